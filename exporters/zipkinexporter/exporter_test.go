package zipkinexporter

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestExport sends spans to a Zipkin endpoint on loopback and checks the body (Zipkin v2
// JSON with the trace and span IDs), and the error classes: 4xx permanent, 5xx and 429
// retryable.
func TestExport(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusAccepted)
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		if r.URL.Path != "/api/v2/spans" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()

	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.ClientConfig.Endpoint = srv.URL + "/api/v2/spans"
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.Enabled = false
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(Type), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("op")
	if err := exp.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatalf("export: %v", err)
	}
	var spans []map[string]any
	if err := json.Unmarshal([]byte(got.Load().(string)), &spans); err != nil || len(spans) != 1 {
		t.Fatalf("body %q: %v", got.Load(), err)
	}
	if spans[0]["traceId"] != "0102030405060708090a0b0c0d0e0f10" || spans[0]["id"] != "0102030405060708" {
		t.Errorf("span %v", spans[0])
	}

	for _, c := range []struct {
		code      int32
		permanent bool
	}{{http.StatusBadRequest, true}, {http.StatusServiceUnavailable, false}, {http.StatusTooManyRequests, false}, {http.StatusInternalServerError, false}} {
		status.Store(c.code)
		err := exp.ConsumeTraces(context.Background(), td)
		if err == nil || consumererror.IsPermanent(err) != c.permanent {
			t.Errorf("answer %d: error %v, permanent %v, want permanent %v", c.code, err, consumererror.IsPermanent(err), c.permanent)
		}
	}
}
