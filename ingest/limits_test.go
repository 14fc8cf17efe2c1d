package ingest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestDoorLimits: a request past a limit is refused whole, over every protocol, with
// 400 / InvalidArgument naming the limit, and nothing of it is stored.
func TestDoorLimits(t *testing.T) {
	d := startDoorWith(t, func(c *ProcessorConfig) {
		c.Limits = Limits{MaxSpansPerRequest: 2, MaxAttributesPerSpan: 3, MaxAttributeBytes: 16}
	})
	span := func(td ptrace.Traces) ptrace.Span { return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0) }
	tooMany := seedTraces()
	for i := 0; i < 2; i++ {
		sp := tooMany.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
		span(tooMany).CopyTo(sp)
		sp.SetSpanID(pcommon.SpanID{9, 9, 9, 9, 9, 9, 9, byte(i)})
	}
	manyAttrs := seedTraces()
	for _, k := range []string{"a", "b", "c"} {
		span(manyAttrs).Attributes().PutStr(k, "v")
	}
	longValue := seedTraces()
	span(longValue).Attributes().PutStr("k", strings.Repeat("v", 17))
	longKey := seedTraces()
	span(longKey).Attributes().PutStr(strings.Repeat("k", 18), "v")
	longEvent := seedTraces()
	span(longEvent).Events().AppendEmpty().Attributes().PutStr("e", strings.Repeat("x", 17))
	longNested := seedTraces()
	span(longNested).Attributes().PutEmptySlice("list").AppendEmpty().SetStr(strings.Repeat("y", 17))
	longResource := seedTraces()
	longResource.ResourceSpans().At(0).Resource().Attributes().PutStr("host.name", strings.Repeat("h", 17))
	atLimit := seedTraces()
	span(atLimit).SetTraceID(pcommon.TraceID{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7})
	span(atLimit).Attributes().PutStr("b", strings.Repeat("b", 16))
	span(atLimit).Attributes().PutStr("c", "v")

	for _, c := range []struct {
		name   string
		td     ptrace.Traces
		want   int
		reason string
	}{
		{"spans per request", tooMany, 400, "3 spans, more than the limit of 2 per request"},
		{"attributes per span", manyAttrs, 400, "has 4 attributes, more than the limit of 3"},
		{"attribute value", longValue, 400, `attribute "k" has a value of 17 bytes, more than the limit of 16`},
		{"attribute key", longKey, 400, "has a key of 18 bytes"},
		{"event attribute", longEvent, 400, `event attribute "e" has a value of 17 bytes`},
		{"nested value", longNested, 400, `attribute "list" has a value of 17 bytes`},
		{"resource attribute", longResource, 400, `resource attribute "host.name" has a value of 17 bytes`},
		{"at every limit", atLimit, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, _ := ptraceotlp.NewExportRequestFromTraces(c.td).MarshalProto()
			resp, err := http.Post(d.otlpURL, "application/x-protobuf", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want || !bytes.Contains(msg, []byte(c.reason)) {
				t.Fatalf("OTLP HTTP: %d %q, want %d naming %q", resp.StatusCode, msg, c.want, c.reason)
			}
		})
	}

	// Zipkin and gRPC get the same answers.
	resp, err := http.Post(d.zipkinV2, "application/json", strings.NewReader(
		`[{"traceId":"0102030405060708090a0b0c0d0e0f11","id":"0102030405060708","name":"x","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"z"},"tags":{"sql":"select * from orders"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !bytes.Contains(msg, []byte(`attribute "sql" has a value of 20 bytes`)) {
		t.Errorf("Zipkin long tag: %d %q", resp.StatusCode, msg)
	}
	conn, err := grpc.NewClient(d.otlpGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(manyAttrs))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "more than the limit of 3") {
		t.Errorf("gRPC: %v, want InvalidArgument naming the limit", err)
	}
	if got := d.store.Stats().SpansWritten; got != 1 {
		t.Errorf("store holds %d spans, want only the one at every limit", got)
	}
}

func BenchmarkCheckLimits(b *testing.B) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bench")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 512; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("GET /api/orders")
		for _, k := range []string{"http.method", "http.route", "http.status_code", "net.peer.name", "user.id", "order.id", "db.system", "db.statement"} {
			sp.Attributes().PutStr(k, "some typical attribute value")
		}
		sp.Events().AppendEmpty().Attributes().PutStr("message", "retrying")
	}
	l := defaultLimits()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, e := l.checkLimits(td); e != nil {
			b.Fatal(e)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
}

// checkLimits says a request has no span attribute sampling.priority only when it read
// every span's attribute keys; the sampler then skips looking for one.
func TestCheckLimitsSeesSamplingPriority(t *testing.T) {
	build := func(edit func(rs ptrace.ResourceSpans, sp ptrace.Span)) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range 3 {
			sp := spans.AppendEmpty()
			sp.Attributes().PutStr("http.route", "/x")
			sp.Attributes().PutInt("sampling.prio", 1) // near, not it
			if i == 2 {
				edit(rs, sp)
			}
		}
		return td
	}
	for _, tc := range []struct {
		name   string
		limits Limits
		edit   func(rs ptrace.ResourceSpans, sp ptrace.Span)
		seen   bool
	}{
		{"none", defaultLimits(), func(ptrace.ResourceSpans, ptrace.Span) {}, false},
		{"last span has it", defaultLimits(), func(_ ptrace.ResourceSpans, sp ptrace.Span) { sp.Attributes().PutInt("sampling.priority", 0) }, true},
		{"as a string", defaultLimits(), func(_ ptrace.ResourceSpans, sp ptrace.Span) { sp.Attributes().PutStr("sampling.priority", "1") }, true},
		// The sampler reads span attributes only: elsewhere the key decides nothing.
		{"on the resource", defaultLimits(), func(rs ptrace.ResourceSpans, _ ptrace.Span) {
			rs.Resource().Attributes().PutInt("sampling.priority", 1)
		}, false},
		{"on an event", defaultLimits(), func(_ ptrace.ResourceSpans, sp ptrace.Span) {
			sp.Events().AppendEmpty().Attributes().PutInt("sampling.priority", 1)
		}, false},
		// Limits that do not read the keys cannot tell.
		{"keys not read", Limits{MaxAttributesPerSpan: 100}, func(ptrace.ResourceSpans, ptrace.Span) {}, true},
		{"no limits", Limits{}, func(ptrace.ResourceSpans, ptrace.Span) {}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen, e := tc.limits.checkLimits(build(tc.edit))
			if e != nil {
				t.Fatal(e)
			}
			if seen != tc.seen {
				t.Errorf("prioritySeen = %v, want %v", seen, tc.seen)
			}
		})
	}
}
