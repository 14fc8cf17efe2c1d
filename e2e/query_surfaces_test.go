package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	zipkin "github.com/openzipkin/zipkin-go"
	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestJaegerConformanceThroughAPIv3 runs Jaeger's storage conformance cases through the
// api_v3 gateway, every parameter in its camelCase form, as TestJaegerConformanceThroughAPI
// runs them through /api/traces.
func TestJaegerConformanceThroughAPIv3(t *testing.T) {
	t.Parallel()
	fx, s := startSpoorWithJaegerFixtures(t)
	for i, c := range fx.Cases {
		t.Run(c.Caption, func(t *testing.T) {
			q := c.Query
			// Half the cases in camelCase, half in the snake_case aliases.
			name := func(camel, snake string) string {
				if i%2 == 0 {
					return camel
				}
				return snake
			}
			v := url.Values{}
			if q.ServiceName != "" {
				v.Set(name("query.serviceName", "query.service_name"), q.ServiceName)
			}
			if q.OperationName != "" {
				v.Set(name("query.operationName", "query.operation_name"), q.OperationName)
			}
			if len(q.Attributes) > 0 {
				attrs, err := json.Marshal(q.Attributes)
				if err != nil {
					t.Fatal(err)
				}
				v.Set("query.attributes", string(attrs))
			}
			v.Set(name("query.startTimeMin", "query.start_time_min"), q.StartTimeMin.Format(time.RFC3339Nano))
			v.Set(name("query.startTimeMax", "query.start_time_max"), q.StartTimeMax.Format(time.RFC3339Nano))
			if q.DurationMin > 0 {
				v.Set(name("query.durationMin", "query.duration_min"), q.DurationMin.String())
			}
			if q.DurationMax > 0 {
				v.Set(name("query.durationMax", "query.duration_max"), q.DurationMax.String())
			}
			if q.Limit > 0 {
				v.Set(name("query.searchDepth", "query.num_traces"), strconv.Itoa(q.Limit))
			}
			status, body := httpGet(t, "http://"+s.ep.Query+"/api/v3/traces?"+v.Encode())
			var got []string
			switch status {
			case http.StatusOK:
				got = otlpTraceIDs(t, body)
			case http.StatusNotFound:
				if string(body) != `{"error":{"httpCode":404,"message":"No traces found"}}` {
					t.Fatalf("404 body %s", body)
				}
			default:
				t.Fatalf("GET /api/v3/traces?%s = %d %s", v.Encode(), status, body)
			}
			want := slices.Clone(c.Want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("GET /api/v3/traces?%s\n got %v\nwant %v", v.Encode(), got, want)
			}
		})
	}
}

// TestQueryClientsReplay feeds a live Spoor with zipkin-go (64-bit IDs, shared spans: its
// defaults) and the OTel SDK, then replays the calls that Grafana's Zipkin, Jaeger and
// Jaeger-v3 datasources and Zipkin Lens make (REFERENCE.md §1), checking each answer.
func TestQueryClientsReplay(t *testing.T) {
	t.Parallel()
	s := startSpoor(t, t.TempDir())
	base := time.Now().Add(-2 * time.Minute).Truncate(time.Millisecond)
	zk := sendSharedZipkin(t, s, base)
	otelID := sendPayments(t, s, base.Add(time.Second))
	q := "http://" + s.ep.Query

	// Wait for both traces.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var services []string
		if code := getJSONWith(t, http.DefaultClient, q+"/api/v2/services", &services); code == http.StatusOK &&
			slices.Contains(services, "zk-frontend") && slices.Contains(services, "zk-inventory") && slices.Contains(services, "otel-payments") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("services never appeared")
		}
		time.Sleep(50 * time.Millisecond)
	}
	endTs := strconv.FormatInt(time.Now().UnixMilli(), 10)

	type zspan struct {
		TraceID        string            `json:"traceId"`
		ID             string            `json:"id"`
		ParentID       string            `json:"parentId"`
		Name           string            `json:"name"`
		Kind           string            `json:"kind"`
		Shared         bool              `json:"shared"`
		Timestamp      int64             `json:"timestamp"`
		Duration       int64             `json:"duration"`
		LocalEndpoint  map[string]any    `json:"localEndpoint"`
		RemoteEndpoint map[string]any    `json:"remoteEndpoint"`
		Annotations    []map[string]any  `json:"annotations"`
		Tags           map[string]string `json:"tags"`
	}
	getZipkin := func(path string, out any) {
		t.Helper()
		status, body := httpGet(t, q+path)
		if status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(out); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}

	// The service graph comes from the analytics stage, which writes its rollups every
	// 2 s: wait for the first edges before the clients ask for them.
	depsDeadline := time.Now().Add(15 * time.Second)
	for {
		status, body := httpGet(t, q+"/api/v2/dependencies?endTs="+strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)+"&lookback=86400000")
		if status == http.StatusOK && strings.Contains(string(body), "zk-inventory") {
			break
		}
		if time.Now().After(depsDeadline) {
			t.Fatalf("no service graph edges after 15 s: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("grafana-zipkin", func(t *testing.T) {
		var services, spans []string
		getZipkin("/api/v2/services", &services)
		getZipkin("/api/v2/spans?serviceName=zk-frontend", &spans)
		if !slices.Equal(spans, []string{"call inventory", "get /checkout"}) {
			t.Errorf("span names %v", spans)
		}
		var traces [][]zspan
		getZipkin("/api/v2/traces?serviceName=zk-frontend&spanName=get+%2Fcheckout&limit=20", &traces)
		if len(traces) != 1 || traces[0][0].TraceID != zk {
			t.Fatalf("search: %+v", traces)
		}
		var trace []zspan
		getZipkin("/api/v2/trace/"+zk, &trace)
		if len(trace) != 3 {
			t.Fatalf("trace has %d spans, want 3: %+v", len(trace), trace)
		}
		var client, server *zspan
		for i := range trace {
			switch trace[i].Kind {
			case "CLIENT":
				client = &trace[i]
			case "SERVER":
				if trace[i].Shared {
					server = &trace[i]
				}
			}
		}
		if client == nil || server == nil || client.ID != server.ID {
			t.Fatalf("no shared client/server pair: %+v", trace)
		}
		if server.LocalEndpoint["serviceName"] != "zk-inventory" || client.RemoteEndpoint["serviceName"] != "zk-inventory" {
			t.Errorf("endpoints: server %v client remote %v", server.LocalEndpoint, client.RemoteEndpoint)
		}
		if len(client.Annotations) != 1 || client.Annotations[0]["value"] != "retried" || client.Tags["http.path"] != "/stock" {
			t.Errorf("client annotations %v tags %v", client.Annotations, client.Tags)
		}
	})

	t.Run("zipkin-lens", func(t *testing.T) {
		var names []string
		getZipkin("/api/v2/remoteServices?serviceName=zk-frontend", &names)
		if !slices.Equal(names, []string{"zk-inventory"}) {
			t.Errorf("remote services of zk-frontend: %v", names)
		}
		getZipkin("/api/v2/remoteServices?serviceName=otel-payments", &names)
		if !slices.Equal(names, []string{"bank"}) {
			t.Errorf("remote services of otel-payments: %v", names)
		}
		getZipkin("/api/v2/spans?serviceName=otel-payments", &names)
		if !slices.Equal(names, []string{"charge", "post /pay"}) {
			t.Errorf("span names: %v", names)
		}
		// Lens's search form, with every field filled, and with the empty fields it sends.
		var traces [][]zspan
		getZipkin("/api/v2/traces?serviceName=otel-payments&remoteServiceName=bank&spanName=charge&annotationQuery=env%3Dprod+and+charge.retried&minDuration=1000&maxDuration=60000000&endTs="+endTs+"&lookback=900000&limit=10", &traces)
		if len(traces) != 1 || traces[0][0].TraceID != otelID {
			t.Errorf("lens search: %+v", traces)
		}
		getZipkin("/api/v2/traces?serviceName=otel-payments&spanName=all&annotationQuery=&minDuration=&maxDuration=&endTs="+endTs+"&lookback=900000&limit=10", &traces)
		if len(traces) != 1 {
			t.Errorf("lens search with empty fields: %d traces", len(traces))
		}
		getZipkin("/api/v2/traces?annotationQuery=retried&endTs="+endTs+"&lookback=900000&limit=10", &traces)
		if len(traces) != 1 || traces[0][0].TraceID != zk {
			t.Errorf("annotation search: %+v", traces)
		}
		var trace []zspan
		getZipkin("/api/v2/trace/"+otelID, &trace)
		if len(trace) != 2 {
			t.Errorf("otel trace: %+v", trace)
		}
		var many [][]zspan
		getZipkin("/api/v2/traceMany?traceIds="+zk+","+otelID, &many)
		if len(many) != 2 {
			t.Errorf("traceMany: %d traces", len(many))
		}
		var deps []struct {
			Parent     string `json:"parent"`
			Child      string `json:"child"`
			CallCount  int    `json:"callCount"`
			ErrorCount int    `json:"errorCount"`
		}
		getZipkin("/api/v2/dependencies?endTs="+endTs+"&lookback=86400000", &deps)
		found := false
		for _, d := range deps {
			// The shared span's two halves make one call. (Edges to peer.service, like
			// otel-payments -> bank, are counted once the store stops waiting for an
			// instrumented child, which takes longer than this test.)
			if d.Parent == "zk-frontend" && d.Child == "zk-inventory" && d.CallCount == 1 && d.ErrorCount == 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("dependencies %+v lack zk-frontend -> zk-inventory", deps)
		}
		getZipkin("/api/v2/autocompleteKeys", &names)
		if len(names) != 0 {
			t.Errorf("autocomplete keys %v, want none configured", names)
		}
		// As Zipkin: values are kept only for the configured autocomplete keys.
		getZipkin("/api/v2/autocompleteValues?key=env", &names)
		if len(names) != 0 {
			t.Errorf("autocomplete values of a key not configured: %v, want none", names)
		}
		status, body := httpGet(t, q+"/api/v2/trace/00000000000000ab")
		if status != http.StatusNotFound || string(body) != "00000000000000ab not found" {
			t.Errorf("missing trace: %d %s", status, body)
		}
		status, body = httpGet(t, q+"/api/v2/traces?maxDuration=5")
		if status != http.StatusBadRequest || string(body) != "maxDuration is only valid with minDuration" {
			t.Errorf("bad search: %d %s", status, body)
		}
	})

	t.Run("grafana-jaeger", func(t *testing.T) {
		var env jaegerEnvelope[[]string]
		if code := s.getJSON("/api/services/zk-inventory/operations", &env); code != http.StatusOK || !slices.Equal(env.Data, []string{"get /stock"}) {
			t.Errorf("operations: %d %+v", code, env)
		}
		v := url.Values{}
		v.Set("service", "otel-payments")
		v.Set("operation", "POST /pay")
		v.Set("tags", `{"env":"prod"}`)
		v.Set("minDuration", "1ms")
		v.Set("maxDuration", "1m")
		v.Set("limit", "20")
		v.Set("start", strconv.FormatInt(base.Add(-time.Hour).UnixMicro(), 10))
		v.Set("end", strconv.FormatInt(time.Now().UnixMicro(), 10))
		v.Set("lookback", "custom")
		var traces jaegerEnvelope[[]jaegerTrace]
		if code := s.getJSON("/api/traces?"+v.Encode(), &traces); code != http.StatusOK || len(traces.Data) != 1 || padTraceID(traces.Data[0].TraceID) != otelID {
			t.Errorf("search: %d %+v", code, traces)
		}
		// The Zipkin trace, adjusted: three distinct span IDs, the server half under the client.
		tr, ok := s.trace(zk, 5*time.Second)
		if !ok {
			t.Fatalf("trace %s not found", zk)
		}
		ids := map[string]bool{}
		for _, sp := range tr.Spans {
			ids[sp.SpanID] = true
		}
		if len(ids) != 3 {
			t.Errorf("span IDs not made unique: %+v", tr.Spans)
		}
		if code := s.getJSON("/api/traces/"+zk+"?start="+strconv.FormatInt(base.Add(-time.Hour).UnixMicro(), 10)+"&end="+strconv.FormatInt(time.Now().UnixMicro(), 10), &traces); code != http.StatusOK || len(traces.Data) != 1 {
			t.Errorf("trace with time hints: %d", code)
		}
	})

	t.Run("jaeger-ui", func(t *testing.T) {
		var services jaegerEnvelope[[]string]
		if code := s.getJSON("/api/services", &services); code != http.StatusOK || !slices.Contains(services.Data, "zk-frontend") || services.Total != len(services.Data) {
			t.Errorf("services: %d %+v", code, services)
		}
		var ops jaegerEnvelope[[]struct {
			Name     string `json:"name"`
			SpanKind string `json:"spanKind"`
		}]
		if code := s.getJSON("/api/operations?service=zk-frontend&spanKind=server", &ops); code != http.StatusOK || len(ops.Data) != 1 || ops.Data[0].Name != "get /checkout" {
			t.Errorf("operations: %d %+v", code, ops)
		}
		// SearchForm.submitForm: lookback turned into start/end by the UI, tags as JSON
		// from logfmt, durations as typed.
		v := url.Values{}
		v.Set("service", "zk-frontend")
		v.Set("limit", "20")
		v.Set("lookback", "1h")
		v.Set("start", strconv.FormatInt(time.Now().Add(-time.Hour).UnixMicro(), 10))
		v.Set("end", strconv.FormatInt(time.Now().UnixMicro(), 10))
		v.Set("tags", `{"http.path":"/stock"}`)
		v.Set("minDuration", "5ms")
		var traces jaegerEnvelope[[]jaegerTrace]
		if code := s.getJSON("/api/traces?"+v.Encode(), &traces); code != http.StatusOK || len(traces.Data) != 1 || traces.Data[0].TraceID != zk {
			t.Errorf("search: %d %+v", code, traces)
		}
		v.Set("maxDuration", "6ms") // the client span lasted 7 ms
		if code := s.getJSON("/api/traces?"+v.Encode(), &traces); code != http.StatusOK || len(traces.Data) != 0 {
			t.Errorf("search with maxDuration: %d %d traces", code, len(traces.Data))
		}
		var deps jaegerEnvelope[[]struct {
			Parent    string `json:"parent"`
			Child     string `json:"child"`
			CallCount int    `json:"callCount"`
		}]
		if code := s.getJSON("/api/dependencies?endTs="+endTs+"&lookback=604800000", &deps); code != http.StatusOK || len(deps.Data) == 0 {
			t.Errorf("dependencies: %d %+v", code, deps)
		}
		// "Upload OTLP file": the trace the SDK sent, as OTLP JSON, comes back as one trace.
		status, body := httpGet(t, q+"/api/v3/traces/"+otelID+"?rawTraces=true")
		if status != http.StatusOK {
			t.Fatalf("v3 trace: %d", status)
		}
		var wrapper struct {
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(body, &wrapper); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(q+"/api/transform", "application/json", strings.NewReader(string(wrapper.Result)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var transformed jaegerEnvelope[[]jaegerTrace]
		if err := json.NewDecoder(resp.Body).Decode(&transformed); err != nil || resp.StatusCode != http.StatusOK ||
			len(transformed.Data) != 1 || len(transformed.Data[0].Spans) != 2 || padTraceID(transformed.Data[0].TraceID) != otelID {
			t.Errorf("transform: %d %v %+v", resp.StatusCode, err, transformed)
		}
	})

	t.Run("spoor-api", func(t *testing.T) {
		status, body := httpGet(t, q+"/spoor/api/v1/openapi.json")
		if status != http.StatusOK || !strings.Contains(string(body), `"openapi": "3.`) {
			t.Errorf("openapi.json: %d %.100s", status, body)
		}
		var page struct {
			Traces []struct {
				TraceID     string `json:"traceId"`
				RootService string `json:"rootService"`
				SpanCount   int    `json:"spanCount"`
			} `json:"traces"`
			NextCursor string `json:"nextCursor"`
		}
		if code := getJSONWith(t, http.DefaultClient, q+"/spoor/api/v1/search?service=otel-payments&attrMatch=peer.service=%5Eba&status=unset", &page); code != http.StatusOK ||
			len(page.Traces) != 1 || page.Traces[0].TraceID != otelID || page.Traces[0].SpanCount != 2 || page.NextCursor != "" {
			t.Errorf("search: %d %+v", code, page)
		}
		var sum struct {
			TraceID  string `json:"traceId"`
			Services []struct {
				Name string `json:"name"`
			} `json:"services"`
		}
		if code := getJSONWith(t, http.DefaultClient, q+"/spoor/api/v1/traces/"+zk+"/summary", &sum); code != http.StatusOK || len(sum.Services) != 2 {
			t.Errorf("summary: %d %+v", code, sum)
		}
	})

	t.Run("grafana-jaeger-v3", func(t *testing.T) {
		var services struct {
			Services []string `json:"services"`
		}
		getZipkin("/api/v3/services", &services)
		if !slices.Contains(services.Services, "otel-payments") {
			t.Errorf("v3 services %v", services)
		}
		var ops struct {
			Operations []struct {
				Name     string `json:"name"`
				SpanKind string `json:"spanKind"`
			} `json:"operations"`
		}
		getZipkin("/api/v3/operations?service=otel-payments", &ops)
		if len(ops.Operations) != 2 || ops.Operations[0].Name != "POST /pay" || ops.Operations[0].SpanKind != "server" {
			t.Errorf("v3 operations %+v", ops)
		}
		v := url.Values{}
		v.Set("query.service_name", "otel-payments")
		v.Set("query.start_time_min", base.Add(-time.Hour).Format(time.RFC3339Nano))
		v.Set("query.start_time_max", time.Now().Format(time.RFC3339Nano))
		status, body := httpGet(t, q+"/api/v3/traces?"+v.Encode())
		if got := otlpTraceIDs(t, body); status != http.StatusOK || !slices.Equal(got, []string{otelID}) {
			t.Errorf("v3 search: %d %v", status, got)
		}
		status, body = httpGet(t, q+"/api/v3/traces/"+otelID)
		if got := otlpTraceIDs(t, body); status != http.StatusOK || !slices.Equal(got, []string{otelID}) {
			t.Errorf("v3 trace: %d %v", status, got)
		}
	})
}

// sendSharedZipkin sends, with zipkin-go's defaults (64-bit trace IDs, shared spans), a
// frontend server span calling inventory, whose server side shares the client span's ID.
// It returns the trace ID as Zipkin prints it (16 hex digits).
func sendSharedZipkin(t *testing.T, s *spoor, base time.Time) string {
	t.Helper()
	rep := zipkinhttp.NewReporter("http://"+s.ep.Zipkin+"/api/v2/spans", zipkinhttp.BatchInterval(50*time.Millisecond))
	newTracer := func(service, hostPort string) *zipkin.Tracer {
		ep, err := zipkin.NewEndpoint(service, hostPort)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := zipkin.NewTracer(rep, zipkin.WithLocalEndpoint(ep))
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	front, inv := newTracer("zk-frontend", "10.1.0.1:80"), newTracer("zk-inventory", "10.1.0.2:8080")
	root := front.StartSpan("get /checkout", zipkin.Kind(zipkinmodel.Server), zipkin.StartTime(base))
	remote, err := zipkin.NewEndpoint("zk-inventory", "10.1.0.2:8080")
	if err != nil {
		t.Fatal(err)
	}
	client := front.StartSpan("call inventory", zipkin.Kind(zipkinmodel.Client), zipkin.Parent(root.Context()),
		zipkin.StartTime(base.Add(time.Millisecond)), zipkin.RemoteEndpoint(remote))
	client.Tag("http.path", "/stock")
	client.Annotate(base.Add(2*time.Millisecond), "retried")
	// The server joins the client's span: same ID, shared (B3 propagation with shared spans).
	server := inv.StartSpan("get /stock", zipkin.Kind(zipkinmodel.Server), zipkin.Parent(client.Context()),
		zipkin.StartTime(base.Add(2*time.Millisecond)))
	if server.Context().ID != client.Context().ID {
		t.Fatalf("zipkin-go did not share the span: %v vs %v", server.Context().ID, client.Context().ID)
	}
	server.FinishedWithDuration(5 * time.Millisecond)
	client.FinishedWithDuration(7 * time.Millisecond)
	root.FinishedWithDuration(10 * time.Millisecond)
	if err := rep.Close(); err != nil {
		t.Fatalf("flush zipkin-go: %v", err)
	}
	return root.Context().TraceID.String()
}

// sendPayments sends, with the OTel SDK over OTLP/HTTP, a payments server span and a
// client call to an uninstrumented bank (peer.service).
func sendPayments(t *testing.T, s *spoor, base time.Time) string {
	t.Helper()
	ctx := ctxTimeout(t, 30*time.Second)
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.ep.OTLPHTTP), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(
		attribute.String("service.name", "otel-payments"), attribute.String("env", "prod"))))
	tracer := tp.Tracer("e2e")
	ctx, root := tracer.Start(ctx, "POST /pay", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base))
	_, call := tracer.Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(time.Millisecond)),
		trace.WithAttributes(attribute.String("peer.service", "bank"), attribute.Bool("charge.retried", true)))
	call.End(trace.WithTimestamp(base.Add(4 * time.Millisecond)))
	root.End(trace.WithTimestamp(base.Add(6 * time.Millisecond)))
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("flush OTel SDK: %v", err)
	}
	return root.SpanContext().TraceID().String()
}

func httpGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", u, err)
	}
	return resp.StatusCode, b
}

// otlpTraceIDs reads {"result": TracesData} and returns its trace IDs, sorted, once each.
func otlpTraceIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var wrapper struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &wrapper); err != nil || wrapper.Result == nil {
		t.Fatalf("not {\"result\": …}: %v %.200s", err, body)
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(wrapper.Result)
	if err != nil {
		t.Fatalf("result is not OTLP JSON: %v", err)
	}
	var ids []string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				ids = append(ids, spans.At(k).TraceID().String())
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
