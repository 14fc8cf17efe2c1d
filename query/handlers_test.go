package query

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/badgerstore"
)

// testEnv is the API over a real Badger store, served on 127.0.0.1.
type testEnv struct {
	t     *testing.T
	store *badgerstore.Store
	api   *API
	srv   *httptest.Server
}

func newTestEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	store, err := badgerstore.Open(t.TempDir(), badgerstore.Options{NoSyncWrites: true, Retention: fixtureRetention})
	if err != nil {
		t.Fatalf("open badger store: %v", err)
	}
	api := New(store, opts)
	api.now = func() time.Time { return envNow }
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return &testEnv{t: t, store: store, api: api, srv: srv}
}

// envNow is the API's clock in handler tests: searches default to [envNow−48h, envNow].
var envNow = time.Now().Truncate(time.Second)

func (e *testEnv) write(td ptrace.Traces) {
	e.t.Helper()
	if err := e.store.WriteTraces(context.Background(), td); err != nil {
		e.t.Fatalf("write traces: %v", err)
	}
}

func (e *testEnv) get(path string) (int, []byte) {
	e.t.Helper()
	return e.do(http.MethodGet, path, nil)
}

func (e *testEnv) do(method, path string, header http.Header) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatalf("new request %s: %v", path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body of %s: %v", path, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		e.t.Errorf("%s: Content-Type %q, want application/json", path, ct)
	}
	return resp.StatusCode, body
}

type envelopeJSON struct {
	Data   json.RawMessage `json:"data"`
	Total  int             `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
	Errors []struct {
		Code    int    `json:"code"`
		Msg     string `json:"msg"`
		TraceID string `json:"traceID"`
	} `json:"errors"`
}

func decodeEnvelope(t *testing.T, body []byte) envelopeJSON {
	t.Helper()
	var env envelopeJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("decode envelope: %v\n%s", err, body)
	}
	for _, k := range []string{`"data":`, `"total":`, `"limit":`, `"offset":`, `"errors":`} {
		if !bytes.Contains(body, []byte(k)) {
			t.Errorf("envelope lacks %s: %s", k, body)
		}
	}
	return env
}

// expectOK checks a 200 envelope without errors and returns its data.
func (e *testEnv) expectOK(path string) envelopeJSON {
	e.t.Helper()
	status, body := e.get(path)
	if status != http.StatusOK {
		e.t.Fatalf("GET %s: status %d, body %s", path, status, body)
	}
	env := decodeEnvelope(e.t, body)
	if env.Errors != nil || env.Limit != 0 || env.Offset != 0 {
		e.t.Errorf("GET %s: errors/limit/offset = %v/%d/%d", path, env.Errors, env.Limit, env.Offset)
	}
	return env
}

// expectError checks the exact error envelope shape of Jaeger for a failed request.
func expectError(t *testing.T, what string, status int, body []byte, wantStatus int, msgPart string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d; body %s", what, status, wantStatus, body)
		return
	}
	env := decodeEnvelope(t, body)
	if string(env.Data) != "null" || env.Total != 0 || len(env.Errors) != 1 || env.Errors[0].Code != wantStatus || env.Errors[0].Msg == "" {
		t.Errorf("%s: not the error envelope: %s", what, body)
		return
	}
	if !strings.Contains(env.Errors[0].Msg, msgPart) {
		t.Errorf("%s: msg %q does not contain %q", what, env.Errors[0].Msg, msgPart)
	}
}

func TestHealthz(t *testing.T) {
	e := newTestEnv(t, Options{})
	status, body := e.get("/healthz")
	if status != http.StatusServiceUnavailable || string(body) != `{"status":"unavailable","reason":"starting"}` {
		t.Errorf("before ready: %d %s", status, body)
	}
	e.api.SetReady(true)
	status, body = e.get("/healthz")
	if status != http.StatusOK || string(body) != `{"status":"ok"}` {
		t.Errorf("ready: %d %s", status, body)
	}
	e.api.SetReady(false)
	status, body = e.get("/healthz")
	if status != http.StatusServiceUnavailable || string(body) != `{"status":"unavailable","reason":"shutting down"}` {
		t.Errorf("after ready: %d %s", status, body)
	}
}

func TestServicesEmptyIsArray(t *testing.T) {
	e := newTestEnv(t, Options{})
	status, body := e.get("/api/services")
	if want := `{"data":[],"total":0,"limit":0,"offset":0,"errors":null}`; status != http.StatusOK || string(body) != want {
		t.Errorf("empty services: %d %s, want 200 %s", status, body, want)
	}
	status, body = e.get("/api/services/nobody/operations")
	if want := `{"data":[],"total":0,"limit":0,"offset":0,"errors":null}`; status != http.StatusOK || string(body) != want {
		t.Errorf("operations of an unknown service: %d %s, want 200 %s", status, body, want)
	}
}

func TestServicesAndOperations(t *testing.T) {
	e := newTestEnv(t, Options{})
	start := envNow.Add(-time.Hour)
	e.write(simpleTrace(pcommon.TraceID{1, 1}, "frontend", "GET /", start, time.Millisecond, "prod"))
	// The same span name with another kind: listed once by the legacy endpoint.
	td := simpleTrace(pcommon.TraceID{1, 2}, "frontend", "GET /", start, time.Millisecond, "prod")
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetKind(ptrace.SpanKindClient)
	e.write(td)
	e.write(simpleTrace(pcommon.TraceID{1, 3}, "billing/v2", "charge", start, time.Millisecond, "prod"))
	e.write(simpleTrace(pcommon.TraceID{1, 4}, "100% <svc>", "pay", start, time.Millisecond, "prod"))

	env := e.expectOK("/api/services")
	if string(env.Data) != `["100% \u003csvc\u003e","billing/v2","frontend"]` || env.Total != 3 {
		t.Errorf("services = %s total %d", env.Data, env.Total)
	}

	env = e.expectOK("/api/services/frontend/operations")
	if string(env.Data) != `["GET /","GET / db"]` || env.Total != 2 {
		t.Errorf("legacy operations = %s total %d", env.Data, env.Total)
	}
	// Escaped path segments: %2F keeps the slash inside the service name, %25 a literal %.
	env = e.expectOK("/api/services/billing%2Fv2/operations")
	if string(env.Data) != `["charge","charge db"]` {
		t.Errorf("operations of billing/v2 = %s", env.Data)
	}
	env = e.expectOK("/api/services/" + url.PathEscape("100% <svc>") + "/operations")
	if string(env.Data) != `["pay","pay db"]` {
		t.Errorf("operations of '100%% <svc>' = %s", env.Data)
	}

	env = e.expectOK("/api/operations?service=frontend")
	if want := `[{"name":"GET /","spanKind":"client"},{"name":"GET /","spanKind":"server"},{"name":"GET / db","spanKind":"client"}]`; string(env.Data) != want || env.Total != 3 {
		t.Errorf("operations = %s total %d, want %s", env.Data, env.Total, want)
	}
	env = e.expectOK("/api/operations?service=frontend&spanKind=server")
	if want := `[{"name":"GET /","spanKind":"server"}]`; string(env.Data) != want || env.Total != 1 {
		t.Errorf("server operations = %s total %d, want %s", env.Data, env.Total, want)
	}

	status, body := e.get("/api/operations")
	if want := `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":400,"msg":"parameter 'service' is required"}]}`; status != http.StatusBadRequest || string(body) != want {
		t.Errorf("operations without service: %d %s, want 400 %s", status, body, want)
	}
}

func TestGetTrace(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.write(richTrace())

	env := e.expectOK("/api/traces/5b8efff798038103d269b633813fc60c")
	var traces []json.RawMessage
	if err := json.Unmarshal(env.Data, &traces); err != nil || len(traces) != 1 {
		t.Fatalf("data is not one trace: %v %s", err, env.Data)
	}
	// What the store gives back, converted, is what the handler sends.
	stored, err := e.store.GetTrace(context.Background(), richTraceID)
	if err != nil {
		t.Fatalf("get trace from store: %v", err)
	}
	var cv jaegerConverter
	if want := cv.appendTrace(nil, stored, false); !bytes.Equal(traces[0], want) {
		t.Errorf("handler output differs from the conversion of the stored trace:\n%s\n%s", traces[0], want)
	}
	tr := decodeTrace(t, traces[0])
	if len(tr.Spans) != 5 || tr.Spans[0].OperationName != "POST /checkout" || tr.Spans[4].OperationName != "consume ledger entry" {
		t.Errorf("spans not all there or not sorted: %+v", tr.Spans)
	}
	for _, s := range tr.Spans {
		if _, ok := tr.Processes[s.ProcessID]; !ok {
			t.Errorf("span %s refers to missing process %s", s.SpanID, s.ProcessID)
		}
	}

	// Same trace by base64, uppercase hex, and with the optional hints.
	for _, path := range []string{
		"/api/traces/" + url.PathEscape(base64.StdEncoding.EncodeToString(richTraceID[:])),
		"/api/traces/" + base64.RawURLEncoding.EncodeToString(richTraceID[:]),
		"/api/traces/5B8EFFF798038103D269B633813FC60C?start=1&end=9999999999999999",
	} {
		env := e.expectOK(path)
		if !bytes.Contains(env.Data, []byte(`"traceID":"5b8efff798038103d269b633813fc60c"`)) {
			t.Errorf("%s: wrong trace %.200s", path, env.Data)
		}
	}

	// prettyPrint indents the same JSON.
	_, compact := e.get("/api/traces/5b8efff798038103d269b633813fc60c")
	_, pretty := e.get("/api/traces/5b8efff798038103d269b633813fc60c?prettyPrint=true")
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact, "", "    "); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty, indented.Bytes()) {
		t.Errorf("prettyPrint output is not the indented compact output")
	}

	// raw=true keeps storage order: it differs from the sorted order of this fixture.
	env = e.expectOK("/api/traces/5b8efff798038103d269b633813fc60c?raw=true")
	var rawTraces []json.RawMessage
	if err := json.Unmarshal(env.Data, &rawTraces); err != nil {
		t.Fatal(err)
	}
	if want := cv.appendTrace(nil, stored, true); !bytes.Equal(rawTraces[0], want) {
		t.Errorf("raw output differs from the raw conversion of the stored trace")
	}

	status, body := e.get("/api/traces/0000000000000000d269b633813fc60d")
	if want := `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}`; status != http.StatusNotFound || string(body) != want {
		t.Errorf("missing trace: %d %s, want 404 %s", status, body, want)
	}
}

func TestGetTrace64BitID(t *testing.T) {
	e := newTestEnv(t, Options{})
	id := pcommon.TraceID{8: 0, 9: 0, 10: 0, 11: 0, 12: 0, 13: 0x0a, 14: 0xbc, 15: 0xde}
	e.write(simpleTrace(id, "zipkin-app", "GET /z", envNow.Add(-time.Minute), time.Millisecond, "prod"))
	for _, hexID := range []string{"00000000000000000000000000abcde", "0000000000abcde", "abcde"} {
		env := e.expectOK("/api/traces/" + hexID)
		if !bytes.Contains(env.Data, []byte(`"traceID":"00000000000abcde"`)) {
			t.Errorf("%s: %s", hexID, env.Data)
		}
	}
}

func TestSearch(t *testing.T) {
	e := newTestEnv(t, Options{})
	ids := map[string]pcommon.TraceID{
		"new": {2, 1}, "old": {2, 2}, "slow": {2, 3}, "staging": {2, 4}, "ancient": {2, 5}, "other": {2, 6},
	}
	e.write(simpleTrace(ids["new"], "frontend", "GET /", envNow.Add(-1*time.Hour), 10*time.Millisecond, "prod"))
	e.write(simpleTrace(ids["old"], "frontend", "GET /", envNow.Add(-2*time.Hour), 10*time.Millisecond, "prod"))
	e.write(simpleTrace(ids["slow"], "frontend", "POST /pay", envNow.Add(-3*time.Hour), 3*time.Second, "prod"))
	e.write(simpleTrace(ids["staging"], "frontend", "GET /", envNow.Add(-4*time.Hour), 10*time.Millisecond, "staging"))
	e.write(simpleTrace(ids["ancient"], "frontend", "GET /", envNow.Add(-72*time.Hour), 10*time.Millisecond, "prod"))
	e.write(simpleTrace(ids["other"], "ledger", "append", envNow.Add(-1*time.Hour), 10*time.Millisecond, "prod"))

	search := func(query string) []string {
		t.Helper()
		env := e.expectOK("/api/traces?" + query)
		if env.Total != 0 {
			t.Errorf("%s: total %d, want 0 as Jaeger sends for traces", query, env.Total)
		}
		var traces []uiTrace
		if err := json.Unmarshal(env.Data, &traces); err != nil {
			t.Fatalf("%s: %v\n%s", query, err, env.Data)
		}
		names := make([]string, 0, len(traces))
		for _, tr := range traces {
			name := "?"
			for n, id := range ids {
				if tr.TraceID == traceIDString(id) {
					name = n
				}
			}
			names = append(names, name)
		}
		return names
	}
	check := func(query string, want ...string) {
		t.Helper()
		got := search(query)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: got %q, want %q", query, got, want)
		}
	}

	// Default window is the last 48h before now: "ancient" is out. Newest first.
	check("service=frontend", "new", "old", "slow", "staging")
	check("service=frontend&lookback=1h&limit=2", "new", "old")
	check("service=frontend&operation=POST+%2Fpay", "slow")
	check("service=frontend&tags="+url.QueryEscape(`{"env":"staging"}`), "staging")
	check("service=frontend&tag=env:staging", "staging")
	check("service=frontend&tags="+url.QueryEscape(`{"http.status_code":200}`)+"&tags="+url.QueryEscape(`{"env":"prod"}`), "new", "old", "slow")
	check("service=frontend&minDuration=1s", "slow")
	check("service=frontend&maxDuration=100ms", "new", "old", "staging")
	check("service=frontend&start="+micros(envNow.Add(-150*time.Minute))+"&end="+micros(envNow.Add(-30*time.Minute)), "new", "old")
	check("service=frontend&start="+micros(envNow.Add(-100*time.Hour)), "new", "old", "slow", "staging", "ancient")
	check("service=ledger", "other")
	check("service=nobody")
	// Without a service, every service's traces.
	check("limit=3", "new", "other", "old")

	// By ID list: missing IDs are reported beside a 200.
	missing := pcommon.TraceID{9, 9, 9}
	status, body := e.get("/api/traces?traceID=" + traceIDString(ids["slow"]) + "&traceID=" + traceIDString(missing) + "&traceID=" + traceIDString(ids["other"]))
	if status != http.StatusOK {
		t.Fatalf("traceID list: %d %s", status, body)
	}
	env := decodeEnvelope(t, body)
	var traces []uiTrace
	if err := json.Unmarshal(env.Data, &traces); err != nil {
		t.Fatal(err)
	}
	if len(traces) != 2 || traces[0].TraceID != traceIDString(ids["slow"]) || traces[1].TraceID != traceIDString(ids["other"]) {
		t.Errorf("traceID list returned %+v", traces)
	}
	if len(env.Errors) != 1 || env.Errors[0].TraceID != traceIDString(missing) || env.Errors[0].Msg != "trace not found" || env.Errors[0].Code != 0 {
		t.Errorf("traceID list errors = %+v", env.Errors)
	}
	if !bytes.Contains(body, []byte(`"errors":[{"msg":"trace not found","traceID":"09090900000000000000000000000000"}]`)) {
		t.Errorf("missing-trace error not in Jaeger's shape: %s", body)
	}
}

func micros(t time.Time) string { return itoaInt64(t.UnixMicro()) }

func itoaInt64(n int64) string {
	b, err := json.Marshal(n)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestMalformedParameters(t *testing.T) {
	e := newTestEnv(t, Options{})
	for _, tc := range []struct{ path, msgPart string }{
		{"/api/traces/xyz", "malformed trace ID"},
		{"/api/traces/5b8efff798038103d269b633813fc60c00", "malformed trace ID"},
		{"/api/traces/0", "all-zero"},
		{"/api/traces/abc?start=yesterday", "'start'"},
		{"/api/traces/abc?end=1.5", "'end'"},
		{"/api/traces/abc?raw=yes", "'raw'"},
		{"/api/traces?traceID=xyz", "'traceID'"},
		{"/api/traces?service=a&tags=" + url.QueryEscape(`{"a":`), "'tags'"},
		{"/api/traces?service=a&tags=" + url.QueryEscape(`{"a":[1]}`), "'tags'"},
		{"/api/traces?service=a&tag=nocolon", "'tag'"},
		{"/api/traces?service=a&minDuration=3", "'minDuration'"},
		{"/api/traces?service=a&maxDuration=abc", "'maxDuration'"},
		{"/api/traces?service=a&minDuration=2s&maxDuration=1s", "'maxDuration' should be greater than 'minDuration'"},
		{"/api/traces?service=a&start=abc", "'start'"},
		{"/api/traces?service=a&end=abc", "'end'"},
		{"/api/traces?service=a&start=20&end=10", "'start'"},
		{"/api/traces?service=a&limit=abc", "'limit'"},
		{"/api/traces?service=a&limit=-5", "'limit'"},
		{"/api/traces?service=a&limit=100000", "'limit'"},
		{"/api/traces?service=a&raw=2", "'raw'"},
		{"/api/operations?service=a&spanKind=SERVER", "'spanKind'"},
		{"/api/operations?spanKind=server", "parameter 'service' is required"},
	} {
		status, body := e.get(tc.path)
		expectError(t, tc.path, status, body, http.StatusBadRequest, tc.msgPart)
	}
}

func TestUnknownRoutesUseTheEnvelope(t *testing.T) {
	e := newTestEnv(t, Options{})
	status, body := e.get("/api/nope")
	expectError(t, "unknown route", status, body, http.StatusNotFound, "Not Found")
	status, body = e.do(http.MethodPost, "/api/services", nil)
	expectError(t, "wrong method", status, body, http.StatusMethodNotAllowed, "Method Not Allowed")
}

func TestRequestLimits(t *testing.T) {
	e := newTestEnv(t, Options{MaxQueryStringBytes: 1024, MaxHeaderBytes: 2048})
	status, body := e.get("/api/traces?service=" + strings.Repeat("a", 1100))
	expectError(t, "long query string", status, body, http.StatusRequestURITooLong, "query string")
	// Exactly at the limit is fine.
	e.expectOK("/api/traces?service=" + strings.Repeat("a", 1024-len("service=")))

	status, body = e.do(http.MethodGet, "/api/services", http.Header{"X-Big": {strings.Repeat("b", 3000)}})
	expectError(t, "big headers", status, body, http.StatusRequestHeaderFieldsTooLarge, "headers")
}

// Server() applies the header limit at the socket too: net/http cuts off a header flood
// before any of it reaches a handler.
func TestServerCutsOffHeaderFlood(t *testing.T) {
	store, err := badgerstore.Open(t.TempDir(), badgerstore.Options{NoSyncWrites: true, Retention: fixtureRetention})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	}()
	api := New(store, Options{MaxHeaderBytes: 4096})
	api.SetReady(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := api.Server(ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()

	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}

	req, err := http.NewRequest(http.MethodGet, base+"/api/services", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Flood", strings.Repeat("f", 64<<10))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("flood request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("header flood: status %d, want 431", resp.StatusCode)
	}
}

// A failing store is the server's fault: 500 in the envelope shape, never a panic.
func TestStorageFailureIs500(t *testing.T) {
	e := newTestEnv(t, Options{})
	api := New(failingReader{err: errors.New("disk on fire")}, Options{})
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	e.srv = srv
	for _, path := range []string{
		"/api/services", "/api/services/a/operations", "/api/operations?service=a",
		"/api/traces/abc", "/api/traces?service=a", "/api/traces?traceID=abc",
	} {
		status, body := e.get(path)
		expectError(t, path, status, body, http.StatusInternalServerError, "disk on fire")
	}
}

// failingReader stands for a store whose disk fails; a real Badger store cannot be made to
// fail on demand from outside.
type failingReader struct{ err error }

func (f failingReader) GetTrace(context.Context, pcommon.TraceID) (ptrace.Traces, error) {
	return ptrace.Traces{}, f.err
}
func (f failingReader) GetServices(context.Context) ([]string, error) { return nil, f.err }
func (f failingReader) GetOperations(context.Context, storage.OperationQuery) ([]storage.Operation, error) {
	return nil, f.err
}
func (f failingReader) FindTraces(context.Context, storage.TraceQuery) ([]ptrace.Traces, error) {
	return nil, f.err
}
func (f failingReader) FindTraceIDs(context.Context, storage.TraceQuery) ([]pcommon.TraceID, error) {
	return nil, f.err
}

// The rich trace, written to Badger and served over HTTP, is byte for byte the golden
// conversion: nothing is lost or reordered between the store and the wire.
func TestGetTraceMatchesGolden(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.write(richTrace())
	env := e.expectOK("/api/traces/5b8efff798038103d269b633813fc60c")
	var traces []json.RawMessage
	if err := json.Unmarshal(env.Data, &traces); err != nil || len(traces) != 1 {
		t.Fatalf("data is not one trace: %v", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, traces[0], "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	golden, err := os.ReadFile(filepath.Join("testdata", "jaeger_trace_rich.json"))
	if err != nil {
		t.Fatalf("read golden: %v", err)
	}
	if !bytes.Equal(out.Bytes(), golden) {
		t.Errorf("served trace differs from testdata/jaeger_trace_rich.json:\n%s", out.Bytes())
	}
}

func TestLargeResponsesAreGzipped(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.write(richTrace())
	const path = "/api/traces/5b8efff798038103d269b633813fc60c"
	status, plain := e.get(path) // the client adds and strips gzip itself
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", ce)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("gzip reader: %v", err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if !bytes.Equal(unzipped, plain) {
		t.Error("gzipped body differs from the plain one")
	}

	// Small answers go uncompressed.
	req, err = http.NewRequest(http.MethodGet, e.srv.URL+"/api/services", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp2, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if ce := resp2.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("small response Content-Encoding %q, want none", ce)
	}
}
