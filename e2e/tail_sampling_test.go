package e2e

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestTailSamplingKeepsErrorTraces checks the default config's tail policy end to end:
// at 1% head sampling, a trace whose error span arrives in a second request is stored
// whole, its first span included (held, then released by the error), without th; a
// trace with no error is not stored. Over OTLP/HTTP and OTLP gRPC alike, the held span
// is copied from its request's bytes (the default pipeline allows it: sampler
// tail.hold_request_bytes), th and all, and its th is erased when it is released.
func TestTailSamplingKeepsErrorTraces(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"http", "grpc"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			testTailSamplingKeepsErrorTraces(t, transport)
		})
	}
}

func testTailSamplingKeepsErrorTraces(t *testing.T, transport string) {
	s := startSpoor(t, t.TempDir(), "SPOOR_SAMPLING_PERCENTAGE=1")
	conn, err := grpc.NewClient(s.ep.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Trace IDs whose low 56 bits are small: under 1% head sampling's threshold.
	failing := pcommon.TraceID{0x7a, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 1}
	quiet := pcommon.TraceID{0x7a, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 2}
	send := func(tid pcommon.TraceID, sid byte, isErr bool) {
		t.Helper()
		td, _ := goodTraces(sid)
		sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		sp.SetTraceID(tid)
		sp.TraceState().FromRaw("ot=th:0")
		if isErr {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		if transport == "grpc" {
			if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctxTimeout(t, 10*time.Second), ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
				t.Fatalf("export: %v", err)
			}
			return
		}
		if status, body := post(t, "http://"+s.ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", "", protoBody(t, td)); status != 200 {
			t.Fatalf("export: %d %s", status, body)
		}
	}
	send(failing, 1, false)
	send(quiet, 2, false)
	time.Sleep(300 * time.Millisecond)
	send(failing, 3, true)
	tr, ok := s.trace(failing.String(), 5*time.Second)
	if !ok {
		t.Fatal("error trace not stored")
	}
	if len(tr.Spans) != 2 {
		t.Fatalf("error trace stored with %d spans, want 2 (the held one too)", len(tr.Spans))
	}
	for _, sp := range tr.Spans {
		for _, kv := range sp.Tags {
			if kv.Key == "w3c.tracestate" || kv.Key == "otel.tracestate" {
				if v, _ := kv.Value.(string); strings.Contains(v, "th:") {
					t.Errorf("span %s kept by a tail policy has tracestate %q, want th erased", sp.SpanID, v)
				}
			}
		}
	}
	if _, ok := s.trace(quiet.String(), time.Second); ok {
		t.Error("trace without errors stored at 1% head sampling")
	}
	m := s.metrics()
	counted, copied := false, false
	for _, line := range strings.Split(m, "\n") {
		counted = counted || (strings.HasPrefix(line, "spoor_sampler_tail_traces") && strings.Contains(line, `policy="error"`))
		copied = copied || (strings.HasPrefix(line, "spoor_sampler_tail_held_batches") && strings.Contains(line, `held_as="request_bytes"`))
	}
	if !copied {
		// The default pipeline lets the sampler copy held spans from the request bytes.
		t.Errorf("/metrics counts no held batch copied from its request's bytes")
	}
	if !counted || !strings.Contains(m, "spoor_sampler_tail_buffered_spans") {
		t.Errorf("/metrics lacks the error trace in spoor_sampler_tail_traces or spoor_sampler_tail_buffered_spans")
	}
}

// TestSamplingPriority checks sampling.priority end to end at 1% head sampling: a span
// with priority 1 is stored, and with the default config's tail stage keeps its whole
// trace (the span held before it included); a span with priority 0 is not stored even in
// a trace the error policy keeps.
func TestSamplingPriority(t *testing.T) {
	t.Parallel()
	s := startSpoor(t, t.TempDir(), "SPOOR_SAMPLING_PERCENTAGE=1")
	forced := pcommon.TraceID{0x7b, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 1}
	failing := pcommon.TraceID{0x7b, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 2}
	send := func(tid pcommon.TraceID, sid byte, prio any, isErr bool) {
		t.Helper()
		td, _ := goodTraces(sid)
		sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		sp.SetTraceID(tid)
		switch v := prio.(type) {
		case int:
			sp.Attributes().PutInt("sampling.priority", int64(v))
		case string:
			sp.Attributes().PutStr("sampling.priority", v)
		}
		if isErr {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		if status, body := post(t, "http://"+s.ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", "", protoBody(t, td)); status != 200 {
			t.Fatalf("export: %d %s", status, body)
		}
	}
	send(forced, 1, nil, false)
	send(failing, 2, "0", false)
	time.Sleep(300 * time.Millisecond)
	send(forced, 3, 1, false)
	send(failing, 4, nil, true)
	tr, ok := s.trace(forced.String(), 5*time.Second)
	if !ok || len(tr.Spans) != 2 {
		t.Fatalf("trace with a priority 1 span: stored %v with %d spans, want both spans", ok, len(tr.Spans))
	}
	tr, ok = s.trace(failing.String(), 5*time.Second)
	if !ok || len(tr.Spans) != 1 {
		t.Fatalf("error trace with a priority 0 span: stored %v with %d spans, want only the error span", ok, len(tr.Spans))
	}
	if m := s.metrics(); !strings.Contains(m, `policy="sampling_priority"`) {
		t.Errorf("/metrics does not count policy sampling_priority")
	}
}
