package query

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// callTrace is a frontend span calling an orders span, each in its own batch (as two
// SDKs export them), the child first; the orders span fails when failed.
func callTrace(id pcommon.TraceID, start time.Time, failed bool) (child, parent ptrace.Traces) {
	mk := func(svc string, spanID, parentID byte) (ptrace.Traces, ptrace.Span) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(id)
		sp.SetSpanID(pcommon.SpanID{spanID})
		if parentID != 0 {
			sp.SetParentSpanID(pcommon.SpanID{parentID})
		}
		sp.SetName(svc + " op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		return td, sp
	}
	child, sp := mk("orders", 2, 1)
	sp.SetKind(ptrace.SpanKindServer)
	if failed {
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
	parent, _ = mk("frontend", 1, 0)
	return child, parent
}

func TestDependencies(t *testing.T) {
	e := newTestEnv(t, Options{})
	for i, failed := range []bool{false, true, false} {
		child, parent := callTrace(pcommon.TraceID{0xde, byte(i + 1)}, envNow.Add(-time.Hour), failed)
		e.write(child)
		e.write(parent)
	}
	old, oldParent := callTrace(pcommon.TraceID{0xde, 0x10}, envNow.Add(-30*time.Hour), false)
	e.write(oldParent)
	e.write(old)

	// Defaults: now and 24h; the exact Jaeger shape, without errorCount.
	status, body := e.get("/api/dependencies")
	if want := `{"data":[{"parent":"frontend","child":"orders","callCount":3}],"total":0,"limit":0,"offset":0,"errors":null}`; status != http.StatusOK || string(body) != want {
		t.Errorf("defaults: %d %s\nwant 200 %s", status, body, want)
	}
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	week := strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10)
	env := e.expectOK("/api/dependencies?endTs=" + ms(envNow) + "&lookback=" + week)
	if want := `[{"parent":"frontend","child":"orders","callCount":4}]`; string(env.Data) != want {
		t.Errorf("a week, as Jaeger UI asks: %s, want %s", env.Data, want)
	}
	env = e.expectOK("/api/dependencies?endTs=" + ms(envNow.Add(-29*time.Hour)) + "&lookback=3600000")
	if want := `[{"parent":"frontend","child":"orders","callCount":1}]`; string(env.Data) != want {
		t.Errorf("around the old call: %s, want %s", env.Data, want)
	}
	env = e.expectOK("/api/dependencies?endTs=" + ms(envNow.Add(-100*time.Hour)) + "&lookback=0")
	if string(env.Data) != `[]` {
		t.Errorf("nothing in the window: %s, want []", env.Data)
	}

	for _, c := range []struct{ query, msg string }{
		{"endTs=yesterday", "parameter 'endTs' must be a unix time in milliseconds"},
		{"endTs=-5", "parameter 'endTs'"},
		{"lookback=1h", "parameter 'lookback' must be a non-negative duration in milliseconds"},
		{"lookback=-1", "parameter 'lookback'"},
		{"lookback=99999999999999999999", "parameter 'lookback'"},
	} {
		status, body := e.get("/api/dependencies?" + c.query)
		expectError(t, c.query, status, body, http.StatusBadRequest, c.msg)
	}
}

// A store without the DependencyReader ability: 501 in the envelope, as Jaeger answers
// for a disabled store.
func TestDependenciesNotImplemented(t *testing.T) {
	e := newTestEnv(t, Options{})
	srv := httptest.NewServer(New(struct{ storage.Reader }{e.store}, Options{}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/dependencies")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	expectError(t, "no dependency reader", resp.StatusCode, body, http.StatusNotImplemented, "not supported")
}
