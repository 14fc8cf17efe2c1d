package ingest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestOverloadAnswers: an overloaded Spoor (here: a memory limit the process is always
// over) refuses every protocol with the retryable answer its SDKs understand — HTTP 429
// with Retry-After for OTLP HTTP and Zipkin, gRPC RESOURCE_EXHAUSTED with RetryInfo — and
// stores nothing.
func TestOverloadAnswers(t *testing.T) {
	d := startDoorWith(t, func(c *ProcessorConfig) { c.MemoryLimitMiB = 1; c.RetryAfter = 2 * time.Second })
	good, _ := ptraceotlp.NewExportRequestFromTraces(seedTraces()).MarshalProto()
	zipkin := []byte(`[{"traceId":"0102030405060708090a0b0c0d0e0f10","id":"0102030405060708","name":"x","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"z"}}]`)
	for _, c := range []struct {
		name, url, ctype string
		body             []byte
	}{
		{"otlp http", d.otlpURL, "application/x-protobuf", good},
		{"zipkin v2", d.zipkinV2, "application/json", zipkin},
	} {
		resp, err := http.Post(c.url, c.ctype, bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
			t.Errorf("%s: %d, Retry-After %q (%q); want 429 with Retry-After 2", c.name, resp.StatusCode, resp.Header.Get("Retry-After"), msg)
		}
		if !bytes.Contains(msg, []byte("memory threshold")) {
			t.Errorf("%s: answer %q does not say why", c.name, msg)
		}
	}

	conn, err := grpc.NewClient(d.otlpGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(seedTraces()))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("gRPC export: %v, want RESOURCE_EXHAUSTED", err)
	}
	var delay time.Duration
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != 2*time.Second {
		t.Errorf("gRPC refusal carries retry delay %v, want 2s (without RetryInfo SDKs do not retry RESOURCE_EXHAUSTED)", delay)
	}
	if got := d.store.Stats().SpansWritten; got != 0 {
		t.Errorf("store holds %d spans after refusals", got)
	}
}

// TestAdmissionInflight pins the in-flight bound: requests are admitted up to the
// bound, refused past it, admitted again after a release; a request larger than the
// whole bound goes through alone.
func TestAdmissionInflight(t *testing.T) {
	a := newAdmission(0, 100, time.Second)
	if r := a.admit(60); r != overloadNone {
		t.Fatalf("first 60 spans: %q", r)
	}
	if r := a.admit(40); r != overloadNone {
		t.Fatalf("40 more (100 of 100): %q", r)
	}
	if r := a.admit(1); r != overloadInflight {
		t.Fatalf("101st span: %q, want inflight", r)
	}
	a.release(60)
	if r := a.admit(50); r != overloadNone {
		t.Fatalf("after release: %q", r)
	}
	a.release(40)
	a.release(50)
	if r := a.admit(500); r != overloadNone {
		t.Fatalf("a 500-span request with nothing in flight: %q, want admitted", r)
	}
	if r := a.admit(1); r != overloadInflight {
		t.Fatalf("beside it: %q, want inflight", r)
	}
	a.release(500)
	if r := a.full(); r != overloadNone {
		t.Fatalf("door check with nothing in flight: %q", r)
	}
	a.admit(75)
	if r := a.full(); r != overloadInflight {
		t.Fatalf("door check at three quarters of the bound: %q, want inflight", r)
	}
	a.release(75)
	if got := a.inflight.Load(); got != 0 {
		t.Fatalf("in flight %d after every release", got)
	}
}

// TestAdmissionStopsSampler: the memory sampler started by Start is gone after
// Shutdown, which is safe twice and without Start.
func TestAdmissionStopsSampler(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	idle := newAdmission(64, 0, time.Second)
	idle.shutdown()
	a := newAdmission(64, 0, time.Second)
	a.start()
	a.start()
	if a.memory.Load() <= 0 {
		t.Error("no memory measured at start")
	}
	a.shutdown()
	a.shutdown()
}
