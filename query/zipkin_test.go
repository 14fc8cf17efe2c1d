package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// zipkinBase is when the Zipkin fixtures start: after richTrace, so newest-first puts
// them first.
var zipkinBase = time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)

const (
	// sharedTraceID is a 64-bit trace from zipkin-go with a shared client/server span.
	sharedTraceID = "a1b2c3d4e5f60718"
	// wideTraceID is a 128-bit trace whose low half is sharedTraceID: a 16-hex lookup
	// returns both, as Zipkin's lookup by the low 64 bits does.
	wideTraceID = "1111111111111111a1b2c3d4e5f60718"
)

// zipkinFixtures are Zipkin v2 JSON spans as a Zipkin client sends them, turned into OTLP
// by the contrib translator as the Zipkin receiver does.
func zipkinFixtures(t *testing.T) ptrace.Traces {
	t.Helper()
	us := func(d time.Duration) int64 { return zipkinBase.Add(d).UnixMicro() }
	body := fmt.Sprintf(`[
{"traceId":%[1]q,"id":"000000000000000a","name":"GET /checkout","kind":"SERVER","timestamp":%[3]d,"duration":50000,
 "localEndpoint":{"serviceName":"Frontend","ipv4":"10.0.0.1","port":80},"tags":{"http.path":"/checkout","env":"prod"}},
{"traceId":%[1]q,"id":"000000000000000b","parentId":"000000000000000a","name":"GET /api","kind":"CLIENT","timestamp":%[4]d,"duration":30000,
 "localEndpoint":{"serviceName":"Frontend","ipv4":"10.0.0.1"},"remoteEndpoint":{"serviceName":"backend","ipv4":"10.0.0.2","port":8080},
 "annotations":[{"timestamp":%[5]d,"value":"retried"}],"tags":{"http.path":"/api"}},
{"traceId":%[1]q,"id":"000000000000000b","parentId":"000000000000000a","name":"get /api","kind":"SERVER","shared":true,"timestamp":%[6]d,"duration":20000,
 "localEndpoint":{"serviceName":"backend","ipv4":"10.0.0.2","port":8080},"tags":{"http.path":"/api","error":"timeout"}},
{"traceId":%[2]q,"id":"000000000000000c","name":"nightly batch","timestamp":%[7]d,"duration":1000,
 "localEndpoint":{"serviceName":"batch-job"}}
]`, sharedTraceID, wideTraceID, us(0), us(5*time.Millisecond), us(6*time.Millisecond), us(10*time.Millisecond), us(time.Second))
	td, err := zipkinv2.NewJSONTracesUnmarshaler(false).UnmarshalTraces([]byte(body))
	if err != nil {
		t.Fatalf("translate zipkin fixtures: %v", err)
	}
	// The translator fills attributes from Go maps, in random order: sort them so that
	// golden files are stable.
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sortAttributes(rss.At(i).Resource().Attributes())
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			for k := 0; k < sss.At(j).Spans().Len(); k++ {
				sortAttributes(sss.At(j).Spans().At(k).Attributes())
			}
		}
	}
	return td
}

func sortAttributes(m pcommon.Map) {
	sorted := pcommon.NewMap()
	keys := make([]string, 0, m.Len())
	for k := range m.All() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, _ := m.Get(k)
		v.CopyTo(sorted.PutEmpty(k))
	}
	sorted.CopyTo(m)
}

func newZipkinEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	e := newTestEnv(t, opts)
	e.write(richTrace())
	e.write(zipkinFixtures(t))
	return e
}

// zget GETs a Zipkin path and returns status, Content-Type and body.
func (e *testEnv) zget(path string) (int, string, []byte) {
	e.t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func (e *testEnv) zipkinOK(path string) []byte {
	e.t.Helper()
	status, ct, body := e.zget(path)
	if status != http.StatusOK || !strings.HasPrefix(ct, "application/json") {
		e.t.Fatalf("GET %s: %d %s %s", path, status, ct, body)
	}
	return body
}

func zipkinWindow(end time.Time, lookback time.Duration) string {
	return "endTs=" + strconv.FormatInt(end.UnixMilli(), 10) + "&lookback=" + strconv.FormatInt(lookback.Milliseconds(), 10)
}

func indentJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("indent %s: %v", b, err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// Every Zipkin endpoint's answer, byte for byte, over a real store.
func TestZipkinGolden(t *testing.T) {
	e := newZipkinEnv(t, Options{AutocompleteKeys: []string{"env", "http.path"}})
	win := zipkinWindow(zipkinBase.Add(time.Hour), 48*time.Hour)
	for _, tc := range []struct{ file, path string }{
		{"zipkin_trace_rich.json", "/api/v2/trace/5b8efff798038103d269b633813fc60c"},
		{"zipkin_trace_shared.json", "/api/v2/trace/" + sharedTraceID},
		{"zipkin_trace_wide.json", "/api/v2/trace/" + wideTraceID},
		{"zipkin_traces_search.json", "/api/v2/traces?serviceName=frontend&" + win},
		{"zipkin_traces_all.json", "/api/v2/traces?limit=5&" + win},
		{"zipkin_tracemany.json", "/api/v2/traceMany?traceIds=5b8efff798038103d269b633813fc60c," + wideTraceID},
		{"zipkin_services.json", "/api/v2/services"},
		{"zipkin_spans.json", "/api/v2/spans?serviceName=FRONTEND"},
		{"zipkin_remote_services.json", "/api/v2/remoteServices?serviceName=frontend"},
		{"zipkin_autocomplete_keys.json", "/api/v2/autocompleteKeys"},
		{"zipkin_autocomplete_values.json", "/api/v2/autocompleteValues?key=http.path"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			// The fallback catalogs sample the last day before now.
			e.api.now = func() time.Time { return zipkinBase.Add(time.Hour) }
			checkGolden(t, tc.file, indentJSON(t, e.zipkinOK(tc.path)))
		})
	}
}

// The shared span comes back as two spans with the same ID, the server half marked
// shared, and the OTLP mapping is the translator's: kind, endpoints, annotations, tags.
func TestZipkinSpanMapping(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	var spans []map[string]any
	if err := json.Unmarshal(e.zipkinOK("/api/v2/trace/"+sharedTraceID), &spans); err != nil {
		t.Fatal(err)
	}
	byKey := map[string]map[string]any{}
	for _, s := range spans {
		if s["traceId"] == sharedTraceID {
			byKey[s["id"].(string)+"/"+s["kind"].(string)] = s
		}
	}
	client, server := byKey["000000000000000b/CLIENT"], byKey["000000000000000b/SERVER"]
	if client == nil || server == nil {
		t.Fatalf("shared span halves missing: %v", spans)
	}
	if server["shared"] != true || client["shared"] != nil {
		t.Errorf("shared: server %v client %v", server["shared"], client["shared"])
	}
	if got := client["remoteEndpoint"]; fmt.Sprint(got) != "map[ipv4:10.0.0.2 port:8080 serviceName:backend]" {
		t.Errorf("client remoteEndpoint = %v", got)
	}
	if got := client["localEndpoint"]; fmt.Sprint(got) != "map[ipv4:10.0.0.1 serviceName:frontend]" {
		t.Errorf("client localEndpoint = %v (names are lowercased, as Zipkin does)", got)
	}
	if got, _ := json.Marshal(client["annotations"]); string(got) != fmt.Sprintf(`[{"timestamp":%d,"value":"retried"}]`, zipkinBase.Add(6*time.Millisecond).UnixMicro()) {
		t.Errorf("annotations = %v", got)
	}
	if got := server["timestamp"]; got != float64(zipkinBase.Add(10*time.Millisecond).UnixMicro()) {
		t.Errorf("server timestamp = %v", got)
	}
	if got := server["duration"]; got != float64(20000) {
		t.Errorf("server duration = %v", got)
	}
	// The translator turns Zipkin's error tag into an error status, and back into
	// error=true: the original value does not survive the round trip.
	if tags := server["tags"].(map[string]any); tags["error"] != "true" || tags["http.path"] != "/api" {
		t.Errorf("server tags = %v", tags)
	}
}

func zipkinTraceIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var traces [][]struct {
		TraceID string `json:"traceId"`
	}
	if err := json.Unmarshal(body, &traces); err != nil {
		t.Fatalf("not a list of traces: %v\n%s", err, body)
	}
	ids := []string{}
	for _, tr := range traces {
		if len(tr) == 0 {
			t.Fatalf("empty trace in %s", body)
		}
		ids = append(ids, tr[0].TraceID)
	}
	return ids
}

func TestZipkinSearch(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	const rich = "5b8efff798038103d269b633813fc60c"
	win := zipkinWindow(zipkinBase.Add(time.Hour), 48*time.Hour)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"serviceName=frontend", []string{sharedTraceID}},
		{"serviceName=FRONTEND", []string{sharedTraceID}},
		{"serviceName=nobody", nil},
		{"serviceName=backend&spanName=GET+/api", []string{sharedTraceID}},
		{"serviceName=frontend&spanName=all", []string{sharedTraceID}},
		{"serviceName=frontend&spanName=nothing", nil},
		{"spanName=charge+card", []string{rich}},
		{"serviceName=frontend&remoteServiceName=backend", []string{sharedTraceID}},
		{"remoteServiceName=backend", []string{sharedTraceID}},
		{"serviceName=backend&remoteServiceName=backend", nil},
		// A bare word matches an annotation value or a tag key.
		{"annotationQuery=retried", []string{sharedTraceID}},
		{"annotationQuery=payment.provider", []string{rich}},
		{"annotationQuery=http.path%3D%2Fapi+and+retried", []string{sharedTraceID}},
		// Both terms must hold on one span: /checkout is on the root, retried on the client.
		{"annotationQuery=http.path%3D%2Fcheckout+and+retried", nil},
		{"annotationQuery=http.path%3D%2Fnope", nil},
		// Derived tags: error from the status, error=timeout copied from Zipkin.
		{"annotationQuery=error", []string{sharedTraceID, rich}},
		{"serviceName=payments&annotationQuery=error%3Dtrue", []string{rich}},
		{"annotationQuery=error%3Dtimeout", nil},
		// A resource attribute is a tag of each of the resource's spans.
		{"annotationQuery=deployment.environment%3Dprod", []string{rich}},
		{"serviceName=payments&minDuration=25000", []string{rich}},
		{"serviceName=payments&minDuration=25001", nil},
		{"serviceName=payments&minDuration=1&maxDuration=24999", nil},
		{"minDuration=45000&maxDuration=60000", []string{sharedTraceID}},
		{"limit=1", []string{wideTraceID}},
		{"", []string{wideTraceID, sharedTraceID, rich}},
	} {
		q := tc.query
		if q != "" {
			q += "&"
		}
		got := zipkinTraceIDs(t, e.zipkinOK("/api/v2/traces?"+q+win))
		if !slices.Equal(got, append([]string{}, tc.want...)) {
			t.Errorf("%s: got %v, want %v", tc.query, got, tc.want)
		}
	}
	// The window: endTs before everything, or a lookback that starts after the fixtures.
	if got := zipkinTraceIDs(t, e.zipkinOK("/api/v2/traces?"+zipkinWindow(zipkinBase.Add(-2*time.Hour), time.Hour))); len(got) != 0 {
		t.Errorf("window before the traces: %v", got)
	}
	if got := zipkinTraceIDs(t, e.zipkinOK("/api/v2/traces?"+zipkinWindow(zipkinBase.Add(500*time.Millisecond), time.Second))); !slices.Equal(got, []string{sharedTraceID}) {
		t.Errorf("narrow window: %v", got)
	}
}

// More matches than one page, most thrown away by the exact check: the search pages on.
func TestZipkinSearchPagesPastRejects(t *testing.T) {
	e := newTestEnv(t, Options{})
	start := zipkinBase
	for i := range 60 {
		td := simpleTrace(pcommon.TraceID{3, byte(i + 1)}, "shop", "GET /", start.Add(time.Duration(i)*time.Second), time.Millisecond, "prod")
		if i%20 == 0 {
			ev := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).Events().AppendEmpty()
			ev.SetName("cache.miss")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Second)))
		}
		e.write(td)
	}
	got := zipkinTraceIDs(t, e.zipkinOK("/api/v2/traces?serviceName=shop&annotationQuery=cache.miss&limit=3&"+zipkinWindow(start.Add(time.Hour), 2*time.Hour)))
	want := []string{traceIDString(pcommon.TraceID{3, 41}), traceIDString(pcommon.TraceID{3, 21}), traceIDString(pcommon.TraceID{3, 1})}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestZipkinTraceLookup(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	e.api.now = func() time.Time { return zipkinBase.Add(time.Hour) }
	ids := func(body []byte) []string {
		var spans []struct {
			TraceID string `json:"traceId"`
		}
		if err := json.Unmarshal(body, &spans); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range spans {
			out = append(out, s.TraceID)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	// 16 hex, with a 64-bit trace of that ID: that trace, read directly, as Zipkin's default
	// (STRICT_TRACE_ID=true) answers. (The 128-bit trace with the same low half joins it
	// only with a store that indexes low halves, storage.TraceIDLow64Finder; Badger does
	// not: FORMAT.md, "Trace summary fragments", says what it would cost.)
	if got := ids(e.zipkinOK("/api/v2/trace/" + sharedTraceID)); !slices.Equal(got, []string{sharedTraceID}) {
		t.Errorf("16-hex lookup: %v", got)
	}
	// 32 hex with a zero high half is the same 64-bit ID.
	if got := ids(e.zipkinOK("/api/v2/trace/0000000000000000" + sharedTraceID)); !slices.Equal(got, []string{sharedTraceID}) {
		t.Errorf("zero-padded lookup: %v", got)
	}
	// 32 hex: that trace only.
	if got := ids(e.zipkinOK("/api/v2/trace/" + wideTraceID)); !slices.Equal(got, []string{wideTraceID}) {
		t.Errorf("32-hex lookup: %v", got)
	}
	// The low half of a 128-bit trace alone finds it, with no 64-bit trace of that ID:
	// listed by the store (storage.TraceIDScanner), or, from a store that cannot list
	// IDs, found by a search.
	if got := ids(e.zipkinOK("/api/v2/trace/d269b633813fc60c")); !slices.Equal(got, []string{"5b8efff798038103d269b633813fc60c"}) {
		t.Errorf("low-half lookup: %v", got)
	}
	plain := New(readerOnly{e.store}, Options{})
	plain.now = e.api.now
	rec := httptest.NewRecorder()
	plain.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v2/trace/d269b633813fc60c", nil))
	if got := ids(rec.Body.Bytes()); rec.Code != http.StatusOK || !slices.Equal(got, []string{"5b8efff798038103d269b633813fc60c"}) {
		t.Errorf("low-half lookup through a search: %d %v", rec.Code, got)
	}
	status, ct, body := e.zget("/api/v2/trace/00000000000000ab")
	if status != http.StatusNotFound || string(body) != "00000000000000ab not found" || !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("missing trace: %d %s %q", status, ct, body)
	}
	// traceMany: the traces found, missing ones left out.
	got := zipkinTraceIDs(t, e.zipkinOK("/api/v2/traceMany?traceIds="+wideTraceID+",00000000000000ab,5b8efff798038103d269b633813fc60c"))
	if !slices.Equal(got, []string{wideTraceID, "5b8efff798038103d269b633813fc60c"}) {
		t.Errorf("traceMany: %v", got)
	}
}

func TestZipkinNamesCacheControl(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.write(simpleTrace(pcommon.TraceID{4, 1}, "A", "op", zipkinBase, time.Millisecond, "prod"))
	e.write(simpleTrace(pcommon.TraceID{4, 2}, "a", "OP", zipkinBase, time.Millisecond, "prod"))
	get := func(path string) (string, string) {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Header.Get("Cache-Control")
	}
	if body, cc := get("/api/v2/services"); body != `["a"]` || cc != "" {
		t.Errorf("services: %s, Cache-Control %q", body, cc)
	}
	if body, _ := get("/api/v2/spans?serviceName=a"); body != `["op","op db"]` {
		t.Errorf("span names of both stored spellings: %s", body)
	}
	for i := range 3 {
		e.write(simpleTrace(pcommon.TraceID{4, byte(10 + i)}, "svc"+strconv.Itoa(i), "op", zipkinBase, time.Millisecond, "prod"))
	}
	if body, cc := get("/api/v2/services"); body != `["a","svc0","svc1","svc2"]` || cc != "max-age=300, must-revalidate" {
		t.Errorf("services: %s, Cache-Control %q", body, cc)
	}
	if _, cc := get("/api/v2/spans?serviceName=a"); cc != "max-age=300, must-revalidate" {
		t.Errorf("spans Cache-Control %q", cc)
	}
}

func TestZipkinDependencies(t *testing.T) {
	e := newTestEnv(t, Options{})
	for i, failed := range []bool{false, true} {
		child, parent := callTrace(pcommon.TraceID{0xdf, byte(i + 1)}, envNow.Add(-time.Hour), failed)
		e.write(child)
		e.write(parent)
	}
	body := e.zipkinOK("/api/v2/dependencies?endTs=" + strconv.FormatInt(envNow.UnixMilli(), 10))
	if want := `[{"parent":"frontend","child":"orders","callCount":2,"errorCount":1}]`; string(body) != want {
		t.Errorf("dependencies = %s, want %s", body, want)
	}
	body = e.zipkinOK("/api/v2/dependencies?endTs=" + strconv.FormatInt(envNow.Add(-3*time.Hour).UnixMilli(), 10) + "&lookback=3600000")
	if string(body) != `[]` {
		t.Errorf("dependencies of an empty window = %s", body)
	}
}

// Every malformed or missing parameter: 400, Zipkin's message, as plain text.
func TestZipkinBadRequests(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	for _, tc := range []struct{ path, msg string }{
		{"/api/v2/spans", "serviceName is required"},
		{"/api/v2/remoteServices", "serviceName is required"},
		{"/api/v2/autocompleteValues", "key is required"},
		{"/api/v2/trace/XYZ", "XYZ should be lower-hex encoded with no prefix"},
		{"/api/v2/trace/A1B2C3D4E5F60718", "A1B2C3D4E5F60718 should be lower-hex encoded with no prefix"},
		{"/api/v2/trace/5b8efff798038103d269b633813fc60c00", "traceId.length > 32"},
		{"/api/v2/trace/0000000000000000", "traceId is all zeros"},
		{"/api/v2/traceMany", "traceIds parameter is empty"},
		{"/api/v2/traceMany?traceIds=" + sharedTraceID, "Use /api/v2/trace/{traceId} endpoint to retrieve a single trace"},
		{"/api/v2/traceMany?traceIds=" + sharedTraceID + "," + sharedTraceID, "redundant input: " + sharedTraceID},
		{"/api/v2/traceMany?traceIds=" + sharedTraceID + ",0000000000000000" + sharedTraceID, "redundant input: 0000000000000000" + sharedTraceID},
		{"/api/v2/traceMany?traceIds=" + sharedTraceID + ",zz", "zz should be lower-hex encoded with no prefix"},
		{"/api/v2/traces?minDuration=0", "minDuration <= 0"},
		{"/api/v2/traces?maxDuration=10", "maxDuration is only valid with minDuration"},
		{"/api/v2/traces?minDuration=10&maxDuration=5", "maxDuration < minDuration"},
		{"/api/v2/traces?minDuration=1ms", `minDuration must be an integer, got "1ms"`},
		{"/api/v2/traces?endTs=0", "endTs <= 0"},
		{"/api/v2/traces?endTs=now", `endTs must be an integer, got "now"`},
		{"/api/v2/traces?lookback=-1", "lookback <= 0"},
		{"/api/v2/traces?lookback=99999999999999999", "lookback 99999999999999999 is too large"},
		{"/api/v2/traces?limit=0", "limit <= 0"},
		{"/api/v2/traces?limit=100000", "limit > 1500"},
		{"/api/v2/traces?annotationQuery=" + url.QueryEscape("=x"), `annotationQuery term "=x" has no key`},
		{"/api/v2/dependencies", "endTs is required"},
		{"/api/v2/dependencies?endTs=1&lookback=0", "lookback <= 0"},
	} {
		status, ct, body := e.zget(tc.path)
		if status != http.StatusBadRequest || string(body) != tc.msg || ct != "text/plain; charset=UTF-8" {
			t.Errorf("%s: %d %q %q, want 400 %q", tc.path, status, ct, body, tc.msg)
		}
	}
}

func TestZipkinStorageFailureIs500(t *testing.T) {
	api := New(failingReader{err: fmt.Errorf("disk on fire")}, Options{})
	e := &testEnv{t: t, api: api}
	e.srv = newHTTPServer(t, api)
	for _, path := range []string{
		"/api/v2/services", "/api/v2/spans?serviceName=a", "/api/v2/remoteServices?serviceName=a",
		"/api/v2/traces", "/api/v2/trace/abc", "/api/v2/traceMany?traceIds=1,2", "/api/v2/autocompleteValues?key=k",
	} {
		status, ct, body := e.zget(path)
		if status != http.StatusInternalServerError || !strings.Contains(string(body), "disk on fire") || !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: %d %s %q", path, status, ct, body)
		}
	}
	status, _, body := e.zget("/api/v2/dependencies?endTs=1")
	if status != http.StatusNotImplemented {
		t.Errorf("dependencies without a DependencyReader: %d %s", status, body)
	}
}

func newHTTPServer(t *testing.T, api *API) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func TestParseAnnotationQuery(t *testing.T) {
	got, err := parseAnnotationQuery(" http.uri = /foo and retried and http.uri=/bar and retried=  and x")
	if err != nil {
		t.Fatal(err)
	}
	want := []annotationTerm{{key: "http.uri", value: "/bar", hasValue: true}, {key: "retried", value: "", hasValue: true}, {key: "x"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func FuzzZipkinParams(f *testing.F) {
	for _, s := range []string{
		"serviceName=a&spanName=all&remoteServiceName=b&annotationQuery=a%3Db+and+c&minDuration=1&maxDuration=2&endTs=3&lookback=4&limit=5",
		"annotationQuery=+and+", "minDuration=-1", "lookback=9223372036854775807", "limit=1501",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		zq, err := parseZipkinQuery(q, testNow, DefaultMaxSearchLimit)
		if err != nil {
			if !isParamError(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		if zq.limit < 1 || zq.limit > DefaultMaxSearchLimit || zq.lookback <= 0 {
			t.Fatalf("limit %d lookback %v out of range", zq.limit, zq.lookback)
		}
		if zq.maxDuration != 0 && (zq.minDuration <= 0 || zq.maxDuration < zq.minDuration) {
			t.Fatalf("durations %d..%d accepted", zq.minDuration, zq.maxDuration)
		}
		for _, term := range zq.annotations {
			if term.key == "" || strings.TrimSpace(term.key) != term.key {
				t.Fatalf("term %+v", term)
			}
		}
	})
}

func FuzzZipkinTraceIDs(f *testing.F) {
	for _, s := range []string{"a1b2c3d4e5f60718", "1111111111111111a1b2c3d4e5f60718,2", ",", "0", "x,y,z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := parseTraceIDList(s)
		if err != nil {
			if !isParamError(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		if len(ids) < 2 {
			t.Fatalf("accepted %d IDs", len(ids))
		}
		seen := map[pcommon.TraceID]bool{}
		for _, id := range ids {
			if id.id.IsEmpty() || seen[id.id] {
				t.Fatalf("accepted zero or repeated ID %x", id.id)
			}
			seen[id.id] = true
			if id.only64 != (id.id[0]|id.id[1]|id.id[2]|id.id[3]|id.id[4]|id.id[5]|id.id[6]|id.id[7] == 0) {
				t.Fatalf("only64 wrong for %x", id.id)
			}
		}
	})
}

var errFire = errors.New("disk on fire")

// readerOnly offers a store's storage.Reader methods and no others.
type readerOnly struct{ storage.Reader }
