package query

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func rfc(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339Nano)) }

// v3Result decodes {"result": TracesData} with pdata's own OTLP JSON reader.
func v3Result(t *testing.T, body []byte) ptrace.Traces {
	t.Helper()
	var wrapper struct {
		Result json.RawMessage `json:"result"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wrapper); err != nil || wrapper.Result == nil {
		t.Fatalf("not {\"result\": …}: %v\n%.300s", err, body)
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(wrapper.Result)
	if err != nil {
		t.Fatalf("result is not OTLP JSON: %v", err)
	}
	return td
}

func traceIDsOf(td ptrace.Traces) []string {
	var ids []string
	for _, s := range flattenSpans(td, nil) {
		ids = append(ids, traceIDString(s.span.TraceID()))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func TestV3Golden(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	win := "query.startTimeMin=" + rfc(zipkinBase.Add(-2*time.Hour)) + "&query.startTimeMax=" + rfc(zipkinBase.Add(time.Hour))
	for _, tc := range []struct{ file, path string }{
		{"v3_trace_rich.json", "/api/v3/traces/5b8efff798038103d269b633813fc60c"},
		{"v3_trace_shared.json", "/api/v3/traces/" + sharedTraceID},
		{"v3_trace_shared_raw.json", "/api/v3/traces/" + sharedTraceID + "?rawTraces=true"},
		{"v3_summaries.json", "/api/v3/trace-summaries?" + win},
		{"v3_services.json", "/api/v3/services"},
		{"v3_operations.json", "/api/v3/operations?service=Frontend"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			checkGolden(t, tc.file, indentJSON(t, e.zipkinOK(tc.path)))
		})
	}
}

func TestV3Trace(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	stored, err := e.store.GetTrace(t.Context(), richTraceID)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/api/v3/traces/5b8efff798038103d269b633813fc60c",
		"/api/v3/traces/" + url.PathEscape(base64.StdEncoding.EncodeToString(richTraceID[:])),
		"/api/v3/traces/" + base64.RawURLEncoding.EncodeToString(richTraceID[:]),
		"/api/v3/traces/5b8efff798038103d269b633813fc60c?startTime=2026-03-14T00:00:00Z&end_time=2026-03-15T00:00:00.5Z&raw_traces=false",
	} {
		td := v3Result(t, e.zipkinOK(path))
		if td.SpanCount() != stored.SpanCount() || !slices.Equal(traceIDsOf(td), []string{"5b8efff798038103d269b633813fc60c"}) {
			t.Errorf("%s: %d spans of %v", path, td.SpanCount(), traceIDsOf(td))
		}
	}
	// Adjusted unless raw: the shared span's server half gets its own ID.
	countID := func(td ptrace.Traces, id pcommon.SpanID) int {
		n := 0
		for _, s := range flattenSpans(td, nil) {
			if s.span.SpanID() == id {
				n++
			}
		}
		return n
	}
	shared := pcommon.SpanID{7: 0x0b}
	if n := countID(v3Result(t, e.zipkinOK("/api/v3/traces/"+sharedTraceID)), shared); n != 1 {
		t.Errorf("adjusted: %d spans with the shared ID", n)
	}
	if n := countID(v3Result(t, e.zipkinOK("/api/v3/traces/"+sharedTraceID+"?rawTraces=true")), shared); n != 2 {
		t.Errorf("raw: %d spans with the shared ID", n)
	}
	status, _, body := e.zget("/api/v3/traces/00000000000000ab")
	if want := `{"error":{"httpCode":404,"message":"No traces found"}}`; status != http.StatusNotFound || string(body) != want {
		t.Errorf("missing trace: %d %s", status, body)
	}
}

func TestV3Search(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	const rich = "5b8efff798038103d269b633813fc60c"
	win := "query.startTimeMin=" + rfc(zipkinBase.Add(-2*time.Hour)) + "&query.startTimeMax=" + rfc(zipkinBase.Add(time.Hour))
	snakeWin := "query.start_time_min=" + rfc(zipkinBase.Add(-2*time.Hour)) + "&query.start_time_max=" + rfc(zipkinBase.Add(time.Hour))
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{win, []string{"1111111111111111a1b2c3d4e5f60718", rich, sharedTraceID}},
		{snakeWin, []string{"1111111111111111a1b2c3d4e5f60718", rich, sharedTraceID}},
		{win + "&query.serviceName=payments", []string{rich}},
		{snakeWin + "&query.service_name=payments&query.operation_name=charge+card", []string{rich}},
		{win + "&query.serviceName=Frontend&query.operationName=GET+%2Fcheckout", []string{sharedTraceID}},
		{win + "&query.attributes=" + url.QueryEscape(`{"payment.provider":"acme"}`), []string{rich}},
		{win + "&query.durationMin=40ms", []string{rich, sharedTraceID}},
		{win + "&query.duration_min=40ms&query.duration_max=60ms", []string{sharedTraceID}},
		{win + "&query.searchDepth=1", []string{"1111111111111111a1b2c3d4e5f60718"}},
		{win + "&query.num_traces=2", []string{"1111111111111111a1b2c3d4e5f60718", sharedTraceID}},
		// camelCase wins over its alias.
		{win + "&query.serviceName=payments&query.service_name=batch-job", []string{rich}},
	} {
		got := traceIDsOf(v3Result(t, e.zipkinOK("/api/v3/traces?"+tc.query)))
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", tc.query, got, want)
		}
	}
	status, _, body := e.zget("/api/v3/traces?" + win + "&query.serviceName=nobody")
	if want := `{"error":{"httpCode":404,"message":"No traces found"}}`; status != http.StatusNotFound || string(body) != want {
		t.Errorf("no match: %d %s", status, body)
	}
}

func TestV3BadRequests(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	win := "query.startTimeMin=2026-03-14T00:00:00Z&query.startTimeMax=2026-03-15T00:00:00Z"
	for _, tc := range []struct{ path, msg string }{
		{"/api/v3/traces", "query.startTimeMin and query.startTimeMax are required"},
		{"/api/v3/traces?query.startTimeMin=2026-03-14T00:00:00Z", "query.startTimeMin and query.startTimeMax are required"},
		{"/api/v3/traces?query.start_time_min=yesterday&query.startTimeMax=2026-03-15T00:00:00Z", `malformed parameter query.start_time_min: parsing time "yesterday"`},
		{"/api/v3/traces?query.startTimeMin=2026-03-15T00:00:00Z&query.startTimeMax=2026-03-14T00:00:00Z", "query.startTimeMin must not be after query.startTimeMax"},
		{"/api/v3/traces?" + win + "&query.durationMin=5", "malformed parameter query.durationMin: time: missing unit in duration"},
		{"/api/v3/traces?" + win + "&query.duration_max=-1s", "malformed parameter query.duration_max: negative duration"},
		{"/api/v3/traces?" + win + "&query.durationMin=2s&query.durationMax=1s", "query.durationMax must not be less than query.durationMin"},
		{"/api/v3/traces?" + win + "&query.searchDepth=many", `malformed parameter query.searchDepth: strconv.Atoi: parsing "many"`},
		{"/api/v3/traces?" + win + "&query.num_traces=0", "malformed parameter query.num_traces: must be from 1 to 1500"},
		{"/api/v3/traces?" + win + "&query.raw_traces=perhaps", "malformed parameter query.raw_traces"},
		{"/api/v3/traces?" + win + "&query.attributes=" + url.QueryEscape(`{"a":[1]}`), "malformed parameter query.attributes"},
		{"/api/v3/traces?" + win + "&query.filter=" + url.QueryEscape(`{"and":[]}`), "malformed parameter query.filter: filter expressions are not supported"},
		{"/api/v3/trace-summaries?query.serviceName=a", "query.startTimeMin and query.startTimeMax are required"},
		{"/api/v3/traces/xyz", "malformed parameter trace_id: malformed trace ID"},
		{"/api/v3/traces/abc?startTime=now", "malformed parameter startTime"},
		{"/api/v3/traces/abc?end_time=now", "malformed parameter end_time"},
		{"/api/v3/traces/abc?rawTraces=2", "malformed parameter rawTraces"},
		{"/api/v3/operations", "parameter service is required"},
		{"/api/v3/operations?service=a&span_kind=SERVER", `malformed parameter span_kind: "SERVER" is not one of`},
	} {
		status, ct, body := e.zget(tc.path)
		var env struct {
			Error struct {
				HTTPCode int    `json:"httpCode"`
				Message  string `json:"message"`
			} `json:"error"`
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil || status != http.StatusBadRequest || env.Error.HTTPCode != 400 ||
			!strings.HasPrefix(env.Error.Message, tc.msg) || !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: %d %s %s, want 400 with %q (%v)", tc.path, status, ct, body, tc.msg, err)
		}
	}
}

func TestV3StorageFailureIs500(t *testing.T) {
	api := New(failingReader{err: errFire}, Options{})
	e := &testEnv{t: t, api: api, srv: newHTTPServer(t, api)}
	win := "query.startTimeMin=2026-03-14T00:00:00Z&query.startTimeMax=2026-03-15T00:00:00Z"
	for _, path := range []string{"/api/v3/services", "/api/v3/operations?service=a", "/api/v3/traces/abc", "/api/v3/traces?" + win, "/api/v3/trace-summaries?" + win} {
		status, _, body := e.zget(path)
		if status != http.StatusInternalServerError || !strings.Contains(string(body), `"httpCode":500`) || !strings.Contains(string(body), "disk on fire") {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := summarize(richTrace())
	if s.SpanCount != 5 || s.ErrorCount != 1 || s.orphans != 1 || !s.HasRoot || s.RootService != "api-gateway" || s.RootOperation != "POST /checkout" {
		t.Errorf("summary %+v", s)
	}
	if len(s.Services) != 3 || s.Services[0].Name != "OTLPResourceNoServiceName" || s.Services[1].Name != "api-gateway" || s.Services[1].SpanCount != 3 {
		t.Errorf("services %+v", s.Services)
	}
	if !s.Start.Equal(richTraceStart) || !s.end.Equal(richTraceStart.Add(210*time.Millisecond)) {
		t.Errorf("bounds %v %v", s.Start, s.end)
	}
}

func FuzzV3Params(f *testing.F) {
	for _, s := range []string{
		"query.startTimeMin=2026-03-14T00:00:00Z&query.startTimeMax=2026-03-15T00:00:00Z&query.durationMin=1ms&query.searchDepth=3&query.attributes=%7B%22a%22%3A1%7D",
		"query.start_time_min=2026-03-14T00:00:00.123456789%2B02:00&query.start_time_max=2026-03-15T00:00:00Z&query.num_traces=0",
		"query.filter=x", "query.raw_traces=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		p, err := parseV3Query(q, DefaultMaxSearchLimit)
		if err != nil {
			if !isParamError(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		if p.query.Limit < 1 || p.query.Limit > DefaultMaxSearchLimit || p.query.StartTimeMin.After(p.query.StartTimeMax) {
			t.Fatalf("accepted %+v", p.query)
		}
		if p.query.DurationMin < 0 || p.query.DurationMax < 0 || (p.query.DurationMax != 0 && p.query.DurationMax < p.query.DurationMin) {
			t.Fatalf("durations %v..%v", p.query.DurationMin, p.query.DurationMax)
		}
	})
}
