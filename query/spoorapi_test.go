package query

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// spoorTrace i: a checkout trace starting i minutes before zipkinBase, of (i%4+1)*100 ms,
// on route /r<i%3>, failing when i%5 == 0 (status error) or ok when i%5 == 1; customer
// tier gold/silver/bronze by i%3, region eu-<i%2>.
func spoorTrace(i int) ptrace.Traces {
	start := zipkinBase.Add(-time.Duration(i) * time.Minute)
	td := simpleTrace(pcommon.TraceID{6, byte(i + 1)}, "checkout", "POST /pay", start, time.Duration(i%4+1)*100*time.Millisecond, "prod")
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	root := spans.At(0)
	root.Attributes().PutStr("http.route", fmt.Sprintf("/r%d", i%3))
	root.Attributes().PutStr("customer.tier", []string{"gold", "silver", "bronze"}[i%3])
	td.ResourceSpans().At(0).Resource().Attributes().PutStr("region", fmt.Sprintf("eu-%d", i%2))
	switch i % 5 {
	case 0:
		spans.At(1).Status().SetCode(ptrace.StatusCodeError)
	case 1:
		root.Status().SetCode(ptrace.StatusCodeOk)
	}
	return td
}

func newSpoorEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t, Options{})
	e.api.now = func() time.Time { return zipkinBase.Add(time.Minute) }
	for i := range 30 {
		e.write(spoorTrace(i))
	}
	return e
}

type spoorPage struct {
	Traces []struct {
		TraceID       string `json:"traceId"`
		HasRoot       bool   `json:"hasRoot"`
		RootService   string `json:"rootService"`
		RootOperation string `json:"rootOperation"`
		Start         string `json:"start"`
		StartUnixNano string `json:"startUnixNano"`
		DurationNanos int64  `json:"durationNanos"`
		SpanCount     int    `json:"spanCount"`
		ErrorCount    int    `json:"errorCount"`
		Services      []struct {
			Name       string `json:"name"`
			SpanCount  int    `json:"spanCount"`
			ErrorCount int    `json:"errorCount"`
		} `json:"services"`
	} `json:"traces"`
	NextCursor          string `json:"nextCursor"`
	EstimatedTotal      *int64 `json:"estimatedTotal"`
	EstimatedTotalExact bool   `json:"estimatedTotalExact"`
}

func (e *testEnv) spoorSearch(query string) spoorPage {
	e.t.Helper()
	body := e.zipkinOK("/spoor/api/v1/search?" + query)
	var p spoorPage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		e.t.Fatalf("%s: %v\n%s", query, err, body)
	}
	return p
}

// traceNums maps result trace IDs back to spoorTrace's i.
func traceNums(p spoorPage) []int {
	var out []int
	for _, tr := range p.Traces {
		var n int
		if _, err := fmt.Sscanf(tr.TraceID[2:4], "%02x", &n); err != nil {
			panic(err)
		}
		out = append(out, n-1)
	}
	return out
}

// every pages through a search to its end, limit at a time, and checks that every page
// carries the first page's estimated total.
func (e *testEnv) every(query string, limit int) []int {
	all, _ := e.everyWithTotal(query, limit)
	return all
}

type estimated struct {
	total int64
	exact bool
}

func (e *testEnv) everyWithTotal(query string, limit int) ([]int, estimated) {
	e.t.Helper()
	var all []int
	var est *estimated
	cursor := ""
	for range 100 {
		q := query + "&limit=" + fmt.Sprint(limit)
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		p := e.spoorSearch(q)
		if len(p.Traces) > limit {
			e.t.Fatalf("%s: page of %d", q, len(p.Traces))
		}
		all = append(all, traceNums(p)...)
		if p.EstimatedTotal == nil {
			e.t.Fatalf("%s: no estimatedTotal", q)
		}
		got := estimated{*p.EstimatedTotal, p.EstimatedTotalExact}
		if est == nil {
			est = &got
		} else if got != *est {
			e.t.Fatalf("%s: estimate %+v, the first page's %+v", q, got, *est)
		}
		if p.NextCursor == "" {
			return all, *est
		}
		cursor = p.NextCursor
	}
	e.t.Fatalf("%s: no end after 100 pages", query)
	return nil, estimated{}
}

func wantNums(pred func(i int) bool) []int {
	var out []int
	for i := range 30 {
		if pred(i) {
			out = append(out, i)
		}
	}
	return out
}

func TestSpoorSearch(t *testing.T) {
	t.Run("scan limit", func(t *testing.T) { testSpoorSearch(t, spoorScanLimit) })
	// The store cuts pages short after each trace it checks on its spans: the answers
	// page after page are the same.
	t.Run("scan limit 1", func(t *testing.T) { testSpoorSearch(t, 1) })
}

func testSpoorSearch(t *testing.T, scanLimit int) {
	e := newSpoorEnv(t)
	e.api.scanLimit = scanLimit
	for _, tc := range []struct {
		query string
		want  []int
	}{
		{"service=checkout", wantNums(func(int) bool { return true })},
		{"attr=http.route=/r1", wantNums(func(i int) bool { return i%3 == 1 })},
		// OR within a key, AND across keys.
		{"attr=customer.tier=gold&attr=customer.tier=bronze&attr=region=eu-0", wantNums(func(i int) bool { return i%3 != 1 && i%2 == 0 })},
		// NOT is a span condition too: on the root, which carries the tier...
		{"notAttr=customer.tier=gold&operation=POST+/pay", wantNums(func(i int) bool { return i%3 != 0 })},
		{"notAttr=customer.tier=gold&notAttr=customer.tier=silver&operation=POST+/pay", wantNums(func(i int) bool { return i%3 == 2 })},
		{"attr=customer.tier", wantNums(func(int) bool { return true })},
		{"notAttr=customer.tier&operation=POST+/pay", nil},
		// ...while the db child, without a tier, satisfies it in every trace.
		{"notAttr=customer.tier", wantNums(func(int) bool { return true })},
		{"attrMatch=http.route=^/r[12]$", wantNums(func(i int) bool { return i%3 != 0 })},
		{"attrMatch=customer.tier=ol", wantNums(func(i int) bool { return i%3 == 0 })},
		{"attrMatch=region=1$&attr=http.route=/r0", wantNums(func(i int) bool { return i%2 == 1 && i%3 == 0 })},
		{"status=error", wantNums(func(i int) bool { return i%5 == 0 })},
		{"status=ok", wantNums(func(i int) bool { return i%5 == 1 })},
		{"status=unset&operation=POST+/pay", wantNums(func(i int) bool { return i%5 != 1 })},
		// Every trace has an unset span: the child, or else the root.
		{"status=unset", wantNums(func(int) bool { return true })},
		{"status=ok&attr=customer.tier=gold", wantNums(func(i int) bool { return i%5 == 1 && i%3 == 0 })},
		{"status=unset&notAttr=customer.tier=gold&operation=POST+/pay", wantNums(func(i int) bool { return i%5 != 1 && i%3 != 0 })},
		// The store decides the status and the regular expression, on the same span.
		{"status=unset&attrMatch=http.route=^/r1$", wantNums(func(i int) bool { return i%5 != 1 && i%3 == 1 })},
		{"status=ok&attrMatch=http.route=^/r1$", wantNums(func(i int) bool { return i%5 == 1 && i%3 == 1 })},
		{"status=ok&traceStatus=error", nil},
		{"status=ok&minTraceDuration=300ms", wantNums(func(i int) bool { return i%5 == 1 && i%4 >= 2 })},
		// The error span is the db child: with the root's route it is not one span.
		{"status=error&attr=http.route=/r0", nil},
		{"traceStatus=error&attr=http.route=/r0", wantNums(func(i int) bool { return i%5 == 0 && i%3 == 0 })},
		{"minTraceDuration=300ms", wantNums(func(i int) bool { return i%4 >= 2 })},
		{"minTraceDuration=200ms&maxTraceDuration=300ms", wantNums(func(i int) bool { return i%4 == 1 || i%4 == 2 })},
		// The child lasts a quarter of the trace: span duration ≠ trace duration.
		{"minDuration=100ms&maxDuration=100ms", wantNums(func(i int) bool { return i%4 == 3 || i%4 == 0 })},
		{"start=" + url.QueryEscape(zipkinBase.Add(-10*time.Minute).Format(time.RFC3339Nano)) + "&end=" + url.QueryEscape(zipkinBase.Add(-5*time.Minute).Format(time.RFC3339Nano)),
			wantNums(func(i int) bool { return i >= 5 && i <= 10 })},
	} {
		for _, limit := range []int{1, 4, 50} {
			got, est := e.everyWithTotal(tc.query, limit)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s (pages of %d): got %v, want %v", tc.query, limit, got, tc.want)
			}
			// The estimate is never below the matches, exact when it says so, and exact on
			// a store this small (the store decides every condition, regular expressions
			// too).
			if est.total < int64(len(tc.want)) || (est.exact && est.total != int64(len(tc.want))) || !est.exact && limit < len(tc.want) {
				t.Errorf("%s (pages of %d): estimated total %+v for %d matches", tc.query, limit, est, len(tc.want))
			}
		}
	}
	// Default page size, newest first.
	p := e.spoorSearch("service=checkout")
	if got := traceNums(p); len(got) != DefaultSpoorSearchLimit || got[0] != 0 || got[19] != 19 || p.NextCursor == "" {
		t.Errorf("default page: %v cursor %q", got, p.NextCursor)
	}
}

// A search for a rare span condition no index decides (a regular expression and a span
// duration, on the root) answers within spoorScanPages store pages of ScanLimit span
// checks each, with a cursor, rather than reading the whole window.
func TestSpoorSearchRareConditionIsBounded(t *testing.T) {
	e := newSpoorEnv(t)
	e.api.scanLimit = 1 // each trace is its own batch: one trace checked per store page
	const query = "attrMatch=http.route=^/r1$&minDuration=400ms"
	p := e.spoorSearch(query + "&limit=6")
	// spoorScanPages traces checked, newest first: of them, i%12 == 7 match.
	rare := func(i int) bool { return i%3 == 1 && i%4 == 3 }
	if got, want := traceNums(p), wantNums(func(i int) bool { return rare(i) && i < spoorScanPages }); !slices.Equal(got, want) || p.NextCursor == "" {
		t.Fatalf("first answer %v (cursor %q), want %v and a cursor", got, p.NextCursor, want)
	}
	if all := e.every(query, 6); !slices.Equal(all, wantNums(rare)) {
		t.Fatalf("paged: %v", all)
	}
}

func TestSpoorGolden(t *testing.T) {
	e := newSpoorEnv(t)
	e.write(richTrace())
	for _, tc := range []struct{ file, path string }{
		{"spoor_search.json", "/spoor/api/v1/search?limit=3&attr=customer.tier=gold&traceStatus=error&end=" + url.QueryEscape(zipkinBase.Format(time.RFC3339Nano))},
		{"spoor_summary_rich.json", "/spoor/api/v1/traces/5b8efff798038103d269b633813fc60c/summary"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			checkGolden(t, tc.file, indentJSON(t, e.zipkinOK(tc.path)))
		})
	}
	if body := e.zipkinOK("/spoor/api/v1/openapi.json"); !bytes.Equal(body, openAPIDocument) {
		t.Errorf("openapi.json not served as is")
	}
	status, _, body := e.zget("/spoor/api/v1/traces/0000000000000000000000000000abcd/summary")
	if want := `{"error":{"status":404,"message":"trace 000000000000abcd not found"}}`; status != http.StatusNotFound || string(body) != want {
		t.Errorf("missing: %d %s", status, body)
	}
}

// The OpenAPI document describes every route under /spoor/api/v1 and every parameter the
// search reads.
func TestOpenAPIDocumentsTheAPI(t *testing.T) {
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				Ref  string `json:"$ref"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not an OpenAPI 3 document: %v", err)
	}
	api := New(failingReader{}, Options{})
	for _, r := range api.e.Routes() {
		if !strings.HasPrefix(r.Path, "/spoor/api/v1/") {
			continue
		}
		path := strings.ReplaceAll(r.Path, ":traceID", "{traceId}")
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("%s %s is not in openapi.json", r.Method, path)
		}
	}
	var documented []string
	for _, p := range doc.Paths["/spoor/api/v1/search"]["get"].Parameters {
		documented = append(documented, p.Name)
	}
	slices.Sort(documented)
	read := []string{"attr", "attrMatch", "cursor", "end", "limit", "maxDuration", "maxTraceDuration", "minDuration", "minTraceDuration", "notAttr", "operation", "service", "start", "status", "traceStatus"}
	if !slices.Equal(documented, read) {
		t.Errorf("documented search parameters %v, read %v", documented, read)
	}
	// The flows parameters too ($ref'd ones by the name they refer to).
	documented = documented[:0]
	for _, p := range doc.Paths["/spoor/api/v1/flows"]["get"].Parameters {
		documented = append(documented, cmp.Or(p.Name, path.Base(p.Ref)))
	}
	slices.Sort(documented)
	if read := []string{"end", "limit", "operation", "service", "start"}; !slices.Equal(documented, read) {
		t.Errorf("documented flows parameters %v, read %v", documented, read)
	}
	// And each of them is read: a malformed value of each is refused (or, for free text,
	// changes the answer).
	e := newSpoorEnv(t)
	for _, bad := range []string{"attr==x", "attrMatch=k=(", "cursor=%21%21", "end=x", "limit=0", "maxDuration=x", "maxTraceDuration=x", "minDuration=x", "minTraceDuration=x", "notAttr==x", "start=x", "status=x", "traceStatus=x"} {
		if status, _, body := e.zget("/spoor/api/v1/search?" + bad); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, status, body)
		}
	}
}

func TestSpoorBadRequests(t *testing.T) {
	e := newSpoorEnv(t)
	for _, tc := range []struct{ query, msg string }{
		{"limit=abc", "parameter 'limit' must be an integer from 1 to 1500"},
		{"limit=1501", "parameter 'limit' must be an integer from 1 to 1500"},
		{"start=yesterday", "parameter 'start' must be an RFC 3339 time"},
		{"end=2026-13-01T00:00:00Z", "parameter 'end' must be an RFC 3339 time"},
		{"start=2026-03-14T00:00:00Z&end=2026-03-13T00:00:00Z", "parameter 'start' is after parameter 'end'"},
		{"minDuration=2s&maxDuration=1s", "'maxDuration' should be greater than 'minDuration'"},
		{"minTraceDuration=2s&maxTraceDuration=1s", "'maxTraceDuration' should be greater than 'minTraceDuration'"},
		{"minTraceDuration=5", "parameter 'minTraceDuration' must be a non-negative duration"},
		{"status=failed", "parameter 'status' must be error, ok or unset"},
		{"traceStatus=ok", "parameter 'traceStatus' must be error"},
		{"attr==v", "malformed 'attr' parameter"},
		{"notAttr=", "malformed 'notAttr' parameter"},
		{"attr=k&attr=k=v", "parameter 'attr' gives \"k\" both with and without a value"},
		{"attrMatch=k", "malformed 'attrMatch' parameter, expecting key=regexp"},
		{"attrMatch=k=a(", "parameter 'attrMatch' for \"k\": error parsing regexp"},
		{"cursor=garbage", "parameter 'cursor' is not a cursor this API returned"},
		{"cursor=" + spoorCursor{Store: "x", Skip: 3}.encode(), "parameter 'cursor' is not a cursor this API returned"},
		{"cursor=" + spoorCursor{Store: "not-a-store-cursor"}.encode(), "invalid input"},
	} {
		e.expectSpoorBadRequest(t, "/spoor/api/v1/search?"+tc.query, tc.msg)
	}
	status, _, body := e.zget("/spoor/api/v1/traces/xyz/summary")
	if status != http.StatusBadRequest || !strings.Contains(string(body), "malformed trace ID") {
		t.Errorf("bad ID: %d %s", status, body)
	}
	// A store without the optional abilities: 501, not a guess.
	api := New(failingReader{err: errFire}, Options{})
	plain := &testEnv{t: t, api: api, srv: newHTTPServer(t, api)}
	for _, path := range []string{"/spoor/api/v1/search", "/spoor/api/v1/traces/abc/summary"} {
		if status, _, body := plain.zget(path); status != http.StatusNotImplemented {
			t.Errorf("%s without the store ability: %d %s", path, status, body)
		}
	}
}

func FuzzSpoorSearchParams(f *testing.F) {
	for _, s := range []string{
		"service=a&operation=b&attr=k=v&attr=k=w&notAttr=x&attrMatch=r=%5Ea.*&minDuration=1ms&maxTraceDuration=2s&status=ok&traceStatus=error&start=2026-03-14T00:00:00Z&limit=3&cursor=c",
		"attr=k&attr=k=v", "attrMatch=k=(", "status=", "limit=1500",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		s, err := parseSpoorSearch(q, testNow, DefaultSearchLookback, DefaultMaxSearchLimit)
		if err != nil {
			if !isParamError(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		tq := s.query
		if tq.Limit < 1 || tq.Limit > DefaultMaxSearchLimit || tq.StartTimeMin.After(tq.StartTimeMax) {
			t.Fatalf("accepted %+v", tq)
		}
		for _, a := range tq.AttributeFilters {
			if a.Key == "" {
				t.Fatalf("empty key in %+v", a)
			}
		}
		for _, a := range tq.AttributeFilters {
			if a.Match != nil && (len(a.Values) > 0 || a.Negate) {
				t.Fatalf("a regular expression filter with values or negated: %+v", a)
			}
		}
	})
}

// Traces written while a client pages through a search (with a regular expression, so
// that pages stop inside the store's pages) neither appear nor shift what follows.
func TestSpoorSearchPagesFromOneSnapshot(t *testing.T) {
	e := newSpoorEnv(t)
	const query = "attrMatch=http.route=^/r[01]$&operation=POST+/pay&limit=2"
	want := wantNums(func(i int) bool { return i%3 != 2 })
	var got []int
	cursor := ""
	for n := 0; ; n++ {
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		p := e.spoorSearch(q)
		got = append(got, traceNums(p)...)
		if p.NextCursor == "" || n > 50 {
			break
		}
		cursor = p.NextCursor
		// A newer matching trace, and an older one, arrive between pages.
		e.write(simpleTraceWithRoute(pcommon.TraceID{7, byte(n + 1)}, zipkinBase.Add(time.Duration(n+1)*time.Second), "/r0"))
		e.write(simpleTraceWithRoute(pcommon.TraceID{7, byte(n + 100)}, zipkinBase.Add(-time.Duration(n+1)*time.Second-90*time.Minute), "/r1"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func simpleTraceWithRoute(id pcommon.TraceID, start time.Time, route string) ptrace.Traces {
	td := simpleTrace(id, "checkout", "POST /pay", start, time.Millisecond, "prod")
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("http.route", route)
	return td
}

// TestSpoorDeleteTrace deletes a stored trace over HTTP: 204, then 404 from the trace
// endpoints and the delete itself; a malformed ID is a 400 in the Spoor error shape.
func TestSpoorDeleteTrace(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	id := "5b8efff798038103d269b633813fc60c" // richTrace
	del := func(path string) (int, []byte) {
		req, err := http.NewRequest(http.MethodDelete, e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if status, _, body := e.zget("/spoor/api/v1/traces/" + id + "/summary"); status != http.StatusOK {
		t.Fatalf("before: summary %d %s", status, body)
	}
	if status, body := del("/spoor/api/v1/traces/" + id); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s, want 204", status, body)
	}
	if status, _, body := e.zget("/spoor/api/v1/traces/" + id + "/summary"); status != http.StatusNotFound {
		t.Fatalf("after: summary %d %s, want 404", status, body)
	}
	if status, _, body := e.zget("/api/traces/" + id); status != http.StatusNotFound {
		t.Fatalf("after: Jaeger trace %d %s, want 404", status, body)
	}
	if status, body := del("/spoor/api/v1/traces/" + id); status != http.StatusNotFound || !strings.Contains(string(body), "not found") {
		t.Fatalf("second DELETE: %d %s, want 404 not found", status, body)
	}
	if status, body := del("/spoor/api/v1/traces/xyz"); status != http.StatusBadRequest || !strings.Contains(string(body), "error") {
		t.Fatalf("DELETE of a malformed ID: %d %s, want 400 with an error", status, body)
	}
}

// expectSpoorBadRequest checks that GET path answers 400 in Spoor's error shape (exactly
// {"error": {"status", "message"}}, JSON) with a message containing msg.
func (e *testEnv) expectSpoorBadRequest(t *testing.T, path, msg string) {
	t.Helper()
	status, ct, body := e.zget(path)
	var env struct {
		Error struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || status != http.StatusBadRequest || env.Error.Status != 400 ||
		!strings.Contains(env.Error.Message, msg) || !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: %d %s, want 400 with %q", path, status, body, msg)
	}
}
