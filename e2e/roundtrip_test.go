package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jaegertracing/jaeger-idl/thrift-gen/zipkincore"
	zipkinthrift "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinthriftconverter"
	zipkin "github.com/openzipkin/zipkin-go"
	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	zipkinproto "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// sentTrace is what a test sent, to be compared with what the query API returns.
type sentTrace struct {
	name    string
	traceID string // 32 hex digits
	check   func(t *testing.T, tr jaegerTrace)
}

// TestIngestRoundTrip sends spans with every protocol and client Spoor supports, reads
// each trace back through the Jaeger API, restarts Spoor on the same data directory and
// reads them all again.
func TestIngestRoundTrip(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := startSpoor(t, dataDir)
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)

	sent := []sentTrace{
		sendOTLP(t, "otlp-grpc", base, func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.ep.OTLPGRPC), otlptracegrpc.WithInsecure())
		}),
		sendOTLP(t, "otlp-http", base, func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.ep.OTLPHTTP), otlptracehttp.WithInsecure())
		}),
		sendOTLP(t, "otlp-http-gzip", base, func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.ep.OTLPHTTP), otlptracehttp.WithInsecure(),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}),
		sendZipkinGo(t, "http://"+s.ep.Zipkin, base, "zipkin-go", "rt-zipkin-go"),
		sendZipkinGo(t, "http://"+s.ep.Zipkin, base, "zipkin-go-proto", "rt-zipkin-proto", zipkinhttp.Serializer(zipkinproto.SpanSerializer{})),
		sendOTLPJSON(t, s, base),
		sendZipkinV1JSON(t, s, base),
		sendZipkinV1Thrift(t, s, base),
	}

	first := map[string]jaegerTrace{}
	for _, st := range sent {
		t.Run(st.name, func(t *testing.T) {
			tr, ok := s.trace(st.traceID, 10*time.Second)
			if !ok {
				t.Fatalf("trace %s (sent over %s) not found", st.traceID, st.name)
			}
			if got := padTraceID(tr.TraceID); got != st.traceID {
				t.Fatalf("traceID = %s, want %s", got, st.traceID)
			}
			st.check(t, tr)
			first[st.traceID] = tr
		})
	}

	// The OTLP protobuf requests (gRPC, HTTP, HTTP gzip) were stored as their own bytes
	// (spoor_storage use_request_bytes, on in the default config); Zipkin's, whose protobuf
	// body is no OTLP request, and the JSON ones were encoded.
	const batches = "spoor_storage_exporter_batches"
	m := s.metrics()
	if got := metricValue(m, batches, `encoding="request_bytes"`); got < 3 {
		t.Errorf("%s{encoding=\"request_bytes\"} = %v, want ≥ 3 (the OTLP protobuf senders)", batches, got)
	}
	if got := metricValue(m, batches, `encoding="encoded"`); got < 5 {
		t.Errorf("%s{encoding=\"encoded\"} = %v, want ≥ 5 (the Zipkin and JSON senders)", batches, got)
	}

	s.stop()
	s2 := startSpoor(t, dataDir)
	for _, st := range sent {
		tr, ok := s2.trace(st.traceID, 0)
		if !ok {
			t.Fatalf("after restart: trace %s (%s) not found", st.traceID, st.name)
		}
		if !reflect.DeepEqual(tr, first[st.traceID]) {
			t.Errorf("after restart: trace %s (%s) differs:\n got %+v\nwant %+v", st.traceID, st.name, tr, first[st.traceID])
		}
	}
	var services jaegerEnvelope[[]string]
	s2.getJSON("/api/services", &services)
	for _, want := range []string{"rt-otlp-grpc", "rt-otlp-http", "rt-otlp-json", "rt-zipkin-go", "rt-zipkin-proto", "rt-zipkin-v1-json", "rt-zipkin-v1-thrift"} {
		if !contains(services.Data, want) {
			t.Errorf("after restart: /api/services = %v, missing %s", services.Data, want)
		}
	}
}

// padTraceID undoes Jaeger's trimming of leading zeros in trace IDs.
func padTraceID(id string) string {
	if len(id) < 32 {
		return strings.Repeat("0", 32-len(id)) + id
	}
	return id
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sendOTLP sends a two-span trace with the OTel Go SDK: a server root and a failing
// client child with every attribute type, an event and a link.
func sendOTLP(t *testing.T, proto string, base time.Time, newExporter func(context.Context) (*otlptrace.Exporter, error)) sentTrace {
	t.Helper()
	ctx := ctxTimeout(t, 30*time.Second)
	exp, err := newExporter(ctx)
	if err != nil {
		t.Fatalf("%s exporter: %v", proto, err)
	}
	service := "rt-" + strings.TrimSuffix(proto, "-gzip")
	res := resource.NewSchemaless(
		attribute.String("service.name", service),
		attribute.String("service.version", "1.2.3"),
		attribute.String("deployment.environment", "test"),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	tracer := tp.Tracer("spoor.e2e/"+proto, trace.WithInstrumentationVersion("0.9.1"))

	linkTraceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	linkSpanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	linked := trace.NewSpanContext(trace.SpanContextConfig{TraceID: linkTraceID, SpanID: linkSpanID, TraceFlags: trace.FlagsSampled})

	rootStart := base
	ctx, root := tracer.Start(ctx, "POST /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(rootStart),
		trace.WithAttributes(
			attribute.String("http.request.method", "POST"),
			attribute.Int64("http.response.status_code", 502),
			attribute.Float64("payment.amount", 42.5),
			attribute.Bool("retry", true),
			attribute.StringSlice("tags", []string{"a", "b"}),
		))
	childStart := rootStart.Add(3 * time.Millisecond)
	_, child := tracer.Start(ctx, "charge card", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(childStart),
		trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("link.reason", "retry-of")}}),
		trace.WithAttributes(attribute.String("peer.service", "payment-gateway")))
	eventTime := childStart.Add(2 * time.Millisecond)
	child.AddEvent("card declined", trace.WithTimestamp(eventTime), trace.WithAttributes(attribute.String("decline.code", "insufficient_funds")))
	child.SetStatus(codes.Error, "card declined")
	child.End(trace.WithTimestamp(childStart.Add(7 * time.Millisecond)))
	root.SetStatus(codes.Ok, "")
	root.End(trace.WithTimestamp(rootStart.Add(11 * time.Millisecond)))
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("%s: flush spans: %v", proto, err)
	}

	rootSC, childSC := root.SpanContext(), child.SpanContext()
	return sentTrace{name: proto, traceID: rootSC.TraceID().String(), check: func(t *testing.T, tr jaegerTrace) {
		if len(tr.Spans) != 2 {
			t.Fatalf("got %d spans, want 2: %+v", len(tr.Spans), tr.Spans)
		}
		r := tr.span(t, rootSC.SpanID().String())
		c := tr.span(t, childSC.SpanID().String())
		wantEq(t, "root.operationName", r.OperationName, "POST /checkout")
		wantEq(t, "root.startTime", r.StartTime, rootStart.UnixMicro())
		wantEq(t, "root.duration", r.Duration, int64(11000))
		wantEq(t, "root.references", len(r.References), 0)
		wantTag(t, r.Tags, "span.kind", "server")
		wantTag(t, r.Tags, "http.request.method", "POST")
		wantTag(t, r.Tags, "http.response.status_code", float64(502))
		wantTag(t, r.Tags, "payment.amount", 42.5)
		wantTag(t, r.Tags, "retry", true)
		wantTag(t, r.Tags, "tags", `["a","b"]`)
		wantTag(t, r.Tags, "otel.scope.name", "spoor.e2e/"+proto)
		wantTag(t, r.Tags, "otel.scope.version", "0.9.1")
		if _, isErr := tag(r.Tags, "error"); isErr {
			t.Errorf("root span is marked as error: %+v", r.Tags)
		}

		wantEq(t, "child.operationName", c.OperationName, "charge card")
		wantEq(t, "child.startTime", c.StartTime, childStart.UnixMicro())
		wantEq(t, "child.duration", c.Duration, int64(7000))
		wantTag(t, c.Tags, "span.kind", "client")
		wantTag(t, c.Tags, "error", true)
		wantTag(t, c.Tags, "otel.status_code", "ERROR")
		wantTag(t, c.Tags, "otel.status_description", "card declined")
		wantTag(t, c.Tags, "peer.service", "payment-gateway")
		var parent, follows bool
		for _, ref := range c.References {
			switch {
			case ref.RefType == "CHILD_OF" && ref.SpanID == rootSC.SpanID().String() && padTraceID(ref.TraceID) == rootSC.TraceID().String():
				parent = true
			case ref.RefType == "FOLLOWS_FROM" && ref.SpanID == linkSpanID.String() && padTraceID(ref.TraceID) == linkTraceID.String():
				follows = true
			}
		}
		if !parent || !follows {
			t.Errorf("child references = %+v, want CHILD_OF root and FOLLOWS_FROM the link", c.References)
		}
		if len(c.Logs) != 1 {
			t.Fatalf("child logs = %+v, want the one event", c.Logs)
		}
		wantEq(t, "event.timestamp", c.Logs[0].Timestamp, eventTime.UnixMicro())
		wantTag(t, c.Logs[0].Fields, "event", "card declined")
		wantTag(t, c.Logs[0].Fields, "decline.code", "insufficient_funds")

		for _, sp := range []jaegerSpan{r, c} {
			p, ok := tr.Processes[sp.ProcessID]
			if !ok {
				t.Fatalf("span %s has process %q, not in %v", sp.SpanID, sp.ProcessID, tr.Processes)
			}
			wantEq(t, "process.serviceName", p.ServiceName, service)
			wantTag(t, p.Tags, "service.version", "1.2.3")
			wantTag(t, p.Tags, "deployment.environment", "test")
		}
	}}
}

// sendZipkinGo sends a server span and a client child with zipkin-go's HTTP reporter
// (Zipkin v2 JSON) to the Zipkin receiver at baseURL.
func sendZipkinGo(t *testing.T, baseURL string, base time.Time, name, service string, opts ...zipkinhttp.ReporterOption) sentTrace {
	t.Helper()
	rep := zipkinhttp.NewReporter(baseURL+"/api/v2/spans", append(opts, zipkinhttp.BatchInterval(50*time.Millisecond))...)
	ep, err := zipkin.NewEndpoint(service, "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	tracer, err := zipkin.NewTracer(rep, zipkin.WithLocalEndpoint(ep), zipkin.WithTraceID128Bit(true), zipkin.WithSharedSpans(false))
	if err != nil {
		t.Fatal(err)
	}
	root := tracer.StartSpan("get /orders", zipkin.Kind(zipkinmodel.Server), zipkin.StartTime(base))
	root.Tag("http.path", "/orders")
	root.Tag("order.count", "3")
	root.Annotate(base.Add(time.Millisecond), "cache miss")
	remote, err := zipkin.NewEndpoint("orders-db", "10.0.0.7:5432")
	if err != nil {
		t.Fatal(err)
	}
	child := tracer.StartSpan("select orders", zipkin.Kind(zipkinmodel.Client), zipkin.Parent(root.Context()),
		zipkin.StartTime(base.Add(2*time.Millisecond)), zipkin.RemoteEndpoint(remote))
	child.Tag("error", "connection reset")
	child.FinishedWithDuration(4 * time.Millisecond)
	root.FinishedWithDuration(9 * time.Millisecond)
	if err := rep.Close(); err != nil {
		t.Fatalf("flush zipkin-go reporter: %v", err)
	}
	rc, cc := root.Context(), child.Context()
	return sentTrace{name: name, traceID: rc.TraceID.String(), check: func(t *testing.T, tr jaegerTrace) {
		if len(tr.Spans) != 2 {
			t.Fatalf("got %d spans, want 2: %+v", len(tr.Spans), tr.Spans)
		}
		r := tr.span(t, rc.ID.String())
		c := tr.span(t, cc.ID.String())
		wantEq(t, "root.operationName", r.OperationName, "get /orders")
		wantEq(t, "root.startTime", r.StartTime, base.UnixMicro())
		wantEq(t, "root.duration", r.Duration, int64(9000))
		wantTag(t, r.Tags, "span.kind", "server")
		wantTag(t, r.Tags, "http.path", "/orders")
		wantTag(t, r.Tags, "order.count", "3")
		if len(r.Logs) != 1 || r.Logs[0].Timestamp != base.Add(time.Millisecond).UnixMicro() {
			t.Errorf("root logs = %+v, want the annotation at %d", r.Logs, base.Add(time.Millisecond).UnixMicro())
		}
		wantEq(t, "child.operationName", c.OperationName, "select orders")
		wantEq(t, "child.duration", c.Duration, int64(4000))
		wantTag(t, c.Tags, "span.kind", "client")
		// Zipkin's error tag keeps its message and makes the span an error span.
		wantTag(t, c.Tags, "error", "connection reset")
		wantTag(t, c.Tags, "otel.status_code", "ERROR")
		if len(c.References) != 1 || c.References[0].RefType != "CHILD_OF" || c.References[0].SpanID != rc.ID.String() {
			t.Errorf("child references = %+v, want CHILD_OF %s", c.References, rc.ID)
		}
		wantEq(t, "process", tr.Processes[r.ProcessID].ServiceName, service)
	}}
}

// sendZipkinV1JSON POSTs a Zipkin v1 JSON span (server side, sr/ss annotations).
func sendZipkinV1JSON(t *testing.T, s *spoor, base time.Time) sentTrace {
	t.Helper()
	const traceID, spanID = "5af7183fb1d4cf5f", "6b221d5bc9e6496c"
	ts := base.UnixMicro()
	body := fmt.Sprintf(`[{"traceId":%q,"id":%q,"name":"get /v1/items","timestamp":%d,"duration":6000,
"annotations":[{"timestamp":%d,"value":"sr","endpoint":{"serviceName":"rt-zipkin-v1-json","ipv4":"127.0.0.1","port":8081}},
{"timestamp":%d,"value":"ss","endpoint":{"serviceName":"rt-zipkin-v1-json","ipv4":"127.0.0.1","port":8081}}],
"binaryAnnotations":[{"key":"http.path","value":"/v1/items","endpoint":{"serviceName":"rt-zipkin-v1-json","ipv4":"127.0.0.1","port":8081}}]}]`,
		traceID, spanID, ts, ts, ts+6000)
	postZipkin(t, s, "/api/v1/spans", "application/json", []byte(body), http.StatusAccepted)
	return sentTrace{name: "zipkin-v1-json", traceID: strings.Repeat("0", 16) + traceID, check: func(t *testing.T, tr jaegerTrace) {
		if len(tr.Spans) != 1 {
			t.Fatalf("got %d spans, want 1", len(tr.Spans))
		}
		sp := tr.span(t, spanID)
		wantEq(t, "operationName", sp.OperationName, "get /v1/items")
		wantEq(t, "startTime", sp.StartTime, ts)
		wantEq(t, "duration", sp.Duration, int64(6000))
		wantTag(t, sp.Tags, "span.kind", "server")
		wantTag(t, sp.Tags, "http.path", "/v1/items")
		wantEq(t, "process", tr.Processes[sp.ProcessID].ServiceName, "rt-zipkin-v1-json")
	}}
}

// sendZipkinV1Thrift POSTs a Zipkin v1 Thrift span with a 128-bit trace ID.
func sendZipkinV1Thrift(t *testing.T, s *spoor, base time.Time) sentTrace {
	t.Helper()
	const high, low, id = int64(0x1a2b3c4d5e6f7081), int64(0x12345678abcdef01), int64(0x0badc0ffee15600d)
	ts, dur := base.UnixMicro(), int64(3500)
	host := &zipkincore.Endpoint{Ipv4: 0x7f000001, Port: 9000, ServiceName: "rt-zipkin-v1-thrift"}
	h := high
	span := &zipkincore.Span{
		TraceID: low, TraceIDHigh: &h, ID: id, Name: "publish invoice", Timestamp: &ts, Duration: &dur,
		Annotations: []*zipkincore.Annotation{
			{Timestamp: ts, Value: "cs", Host: host},
			{Timestamp: ts + dur, Value: "cr", Host: host},
		},
		BinaryAnnotations: []*zipkincore.BinaryAnnotation{
			{Key: "queue", Value: []byte("invoices"), AnnotationType: zipkincore.AnnotationType_STRING, Host: host},
		},
	}
	body, err := zipkinthrift.SerializeThrift(context.Background(), []*zipkincore.Span{span})
	if err != nil {
		t.Fatal(err)
	}
	postZipkin(t, s, "/api/v1/spans", "application/x-thrift", body, http.StatusAccepted)
	traceID := fmt.Sprintf("%016x%016x", uint64(high), uint64(low))
	spanID := fmt.Sprintf("%016x", uint64(id))
	return sentTrace{name: "zipkin-v1-thrift", traceID: traceID, check: func(t *testing.T, tr jaegerTrace) {
		if len(tr.Spans) != 1 {
			t.Fatalf("got %d spans, want 1", len(tr.Spans))
		}
		sp := tr.span(t, spanID)
		wantEq(t, "operationName", sp.OperationName, "publish invoice")
		wantEq(t, "startTime", sp.StartTime, ts)
		wantEq(t, "duration", sp.Duration, dur)
		wantTag(t, sp.Tags, "span.kind", "client")
		wantTag(t, sp.Tags, "queue", "invoices")
		wantEq(t, "process", tr.Processes[sp.ProcessID].ServiceName, "rt-zipkin-v1-thrift")
	}}
}

func postZipkin(t *testing.T, s *spoor, path, contentType string, body []byte, wantStatus int) {
	t.Helper()
	resp, err := http.Post("http://"+s.ep.Zipkin+path, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("POST %s (%s) = %d, want %d", path, contentType, resp.StatusCode, wantStatus)
	}
}

func wantEq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantTag(t *testing.T, tags []jaegerKV, key string, want any) {
	t.Helper()
	got, ok := tag(tags, key)
	if !ok {
		t.Errorf("tag %q missing from %+v", key, tags)
		return
	}
	if gf, ok := got.(float64); ok {
		if wf, ok := want.(float64); ok && math.Abs(gf-wf) < 1e-9 {
			return
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tag %q = %#v, want %#v", key, got, want)
	}
}

// sendOTLPJSON POSTs an OTLP/HTTP JSON request, as browser and curl users send them.
func sendOTLPJSON(t *testing.T, s *spoor, base time.Time) sentTrace {
	t.Helper()
	const traceID, spanID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	start := base.UnixNano()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"rt-otlp-json"}}]},
"scopeSpans":[{"scope":{"name":"curl"},"spans":[{"traceId":%q,"spanId":%q,"name":"GET /json","kind":2,
"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[{"key":"n","value":{"intValue":"7"}}],
"status":{"code":2,"message":"boom"}}]}]}]}`, traceID, spanID, start, start+2500000)
	status, msg := post(t, "http://"+s.ep.OTLPHTTP+"/v1/traces", "application/json", "", []byte(body))
	if status != http.StatusOK {
		t.Fatalf("POST OTLP JSON = %d %s", status, msg)
	}
	return sentTrace{name: "otlp-json", traceID: traceID, check: func(t *testing.T, tr jaegerTrace) {
		sp := tr.span(t, spanID)
		wantEq(t, "operationName", sp.OperationName, "GET /json")
		wantEq(t, "startTime", sp.StartTime, base.UnixMicro())
		wantEq(t, "duration", sp.Duration, int64(2500))
		wantTag(t, sp.Tags, "span.kind", "server")
		wantTag(t, sp.Tags, "n", float64(7))
		wantTag(t, sp.Tags, "error", true)
		wantTag(t, sp.Tags, "otel.status_description", "boom")
		wantTag(t, sp.Tags, "otel.scope.name", "curl")
		wantEq(t, "process", tr.Processes[sp.ProcessID].ServiceName, "rt-otlp-json")
	}}
}
