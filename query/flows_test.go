package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// flowSpec is one span of a flow fixture: its service, name, kind, parent (an index
// into the trace's specs, -1 for none), start and duration in ms, and whether it failed.
type flowSpec struct {
	service, name string
	kind          ptrace.SpanKind
	parent        int
	start, dur    int
	failed        bool
}

func flowFixture(id pcommon.TraceID, start time.Time, specs []flowSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	scopes := map[string]ptrace.ScopeSpans{}
	for i, s := range specs {
		ss, ok := scopes[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			ss = rs.ScopeSpans().AppendEmpty()
			scopes[s.service] = ss
		}
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(id)
		sp.SetSpanID(pcommon.SpanID{byte(i + 1), id[15], id[14]})
		if s.parent >= 0 {
			sp.SetParentSpanID(pcommon.SpanID{byte(s.parent + 1), id[15], id[14]})
		}
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		at := start.Add(time.Duration(s.start) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(s.dur) * time.Millisecond)))
		if s.failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

// checkoutFlow i: gateway POST /checkout → orders CreateOrder → (INSERT in orders,
// inventory reserve, payments charge → fraud score), lasting 100+i ms. When i%4 == 0 the
// fraud check fails and the failure is reported up through payments, orders and the
// gateway; when i%5 == 0 inventory is called twice (a retry); when i%7 == 3 the INSERT
// fails inside orders and nothing above it fails.
func checkoutFlow(i int) ptrace.Traces {
	fraud := i%4 == 0
	d := 100 + i
	specs := []flowSpec{
		{"gateway", "POST /checkout", ptrace.SpanKindServer, -1, 0, d, fraud},
		{"gateway", "CreateOrder", ptrace.SpanKindClient, 0, 1, d - 2, fraud},
		{"orders", "CreateOrder", ptrace.SpanKindServer, 1, 2, d - 4, fraud},
		{"orders", "INSERT", ptrace.SpanKindClient, 2, 3, 5, i%7 == 3},
		{"inventory", "reserve", ptrace.SpanKindServer, 2, 9, 5, false},
		{"payments", "charge", ptrace.SpanKindServer, 2, 20, d / 2, fraud},
		{"fraud", "score", ptrace.SpanKindServer, 5, 22, 10, fraud},
	}
	if i%5 == 0 {
		specs = append(specs, flowSpec{"inventory", "reserve", ptrace.SpanKindServer, 2, 15, 4, false})
	}
	return flowFixture(pcommon.TraceID{9, byte(i + 1)}, zipkinBase.Add(-time.Duration(i)*time.Minute), specs)
}

type flowHopT struct {
	Service, Operation, SpanKind string
	Depth, Calls, Traces, Errors int
	ErrorShare                   float64
	Origins                      int
	P50Ms, P95Ms, P99Ms          float64
	ExampleOk, ExampleError      []string
	Children                     []*flowHopT
}

type flowRefT struct{ Service, Operation, SpanKind string }

type flowT struct {
	Service, Operation string
	Start, End         time.Time
	Limit              int
	TracesExamined     int
	Truncated          bool
	Traces             int
	ErrorTraces        int
	ErrorShare         float64
	Root               *flowHopT
	Paths              []struct {
		Hops []struct {
			flowRefT
			Calls int
		}
		Traces, ErrorTraces int
		ErrorShare          float64
		P50Ms, P95Ms, P99Ms float64
		Origins             []struct {
			Hop    flowRefT
			Spread []flowRefT
			Traces int
		}
		ExampleOk, ExampleError []string
	}
}

func (e *testEnv) flow(query string) flowT {
	e.t.Helper()
	body := e.zipkinOK("/spoor/api/v1/flows?" + query)
	var f flowT
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		e.t.Fatalf("%s: %v\n%s", query, err, body)
	}
	return f
}

func newFlowEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t, Options{})
	e.api.now = func() time.Time { return zipkinBase.Add(time.Minute) }
	for i := range 20 {
		e.write(checkoutFlow(i))
	}
	// Another entry operation of the same service, and a trace in which POST /checkout is
	// called from elsewhere: the flow starts at that span, not at the trace's root.
	e.write(flowFixture(pcommon.TraceID{9, 0xf0}, zipkinBase.Add(-30*time.Second), []flowSpec{
		{"gateway", "GET /health", ptrace.SpanKindServer, -1, 0, 1, false},
	}))
	e.write(flowFixture(pcommon.TraceID{9, 0xf1}, zipkinBase.Add(-40*time.Second), []flowSpec{
		{"loadgen", "run", ptrace.SpanKindInternal, -1, 0, 50, false},
		{"gateway", "POST /checkout", ptrace.SpanKindServer, 0, 1, 40, true},
	}))
	return e
}

const flowQueryStr = "service=gateway&operation=POST+/checkout"

func hopByService(n *flowHopT, svc string) []*flowHopT {
	var out []*flowHopT
	var walk func(*flowHopT)
	walk = func(h *flowHopT) {
		if h.Service == svc {
			out = append(out, h)
		}
		for _, c := range h.Children {
			walk(c)
		}
	}
	walk(n)
	return out
}

func TestFlowAggregates(t *testing.T) {
	e := newFlowEnv(t)
	f := e.flow(flowQueryStr)
	count := func(pred func(i int) bool) int {
		n := 0
		for i := range 20 {
			if pred(i) {
				n++
			}
		}
		return n
	}
	fraudFails := count(func(i int) bool { return i%4 == 0 })
	insertFails := count(func(i int) bool { return i%7 == 3 })
	retries := count(func(i int) bool { return i%5 == 0 })
	if f.TracesExamined != 21 || f.Traces != 21 || f.Truncated {
		t.Fatalf("examined %d, folded %d, truncated %v; want 21, 21, false", f.TracesExamined, f.Traces, f.Truncated)
	}
	// Failed: the fraud failures, the INSERT failures, and the loadgen trace's entry.
	if want := fraudFails + insertFails + 1; f.ErrorTraces != want {
		t.Errorf("error traces %d, want %d", f.ErrorTraces, want)
	}
	root := f.Root
	if root == nil || root.Service != "gateway" || root.Operation != "POST /checkout" || root.SpanKind != "server" || root.Calls != 21 {
		t.Fatalf("root %+v", root)
	}
	// gateway → orders (the gateway's client span belongs to the gateway's hop).
	if len(root.Children) != 1 || root.Children[0].Service != "orders" || root.Children[0].Depth != 1 {
		t.Fatalf("root children %+v", root.Children)
	}
	orders := root.Children[0]
	if orders.Calls != 20 || orders.Errors != fraudFails+insertFails || orders.Origins != insertFails {
		t.Errorf("orders: calls %d errors %d origins %d", orders.Calls, orders.Errors, orders.Origins)
	}
	inv := hopByService(root, "inventory")[0]
	if inv.Traces != 20 || inv.Calls != 20+retries || inv.Errors != 0 || inv.Depth != 2 {
		t.Errorf("inventory: %+v", inv)
	}
	fr := hopByService(root, "fraud")[0]
	if fr.Calls != 20 || fr.Errors != fraudFails || fr.Origins != fraudFails || fr.ErrorShare != float64(fraudFails)/20 || fr.Depth != 3 {
		t.Errorf("fraud: %+v", fr)
	}
	pay := hopByService(root, "payments")[0]
	if pay.Errors != fraudFails || pay.Origins != 0 {
		t.Errorf("payments: the failure spread up, it did not start there: %+v", pay)
	}
	// The gateway hop: the loadgen trace's failure starts in it.
	if root.Origins != 1 || root.Errors != fraudFails+1 {
		t.Errorf("gateway origins %d errors %d", root.Origins, root.Errors)
	}
	// Latency of fraud: every call lasts 10 ms.
	if fr.P50Ms != 10 || fr.P99Ms != 10 {
		t.Errorf("fraud latency %v/%v", fr.P50Ms, fr.P99Ms)
	}
	// The root's durations: 40 ms and 100..119 ms, by nearest rank.
	if root.P50Ms != 109 || root.P95Ms != 118 || root.P99Ms != 119 {
		t.Errorf("root latency %v/%v/%v", root.P50Ms, root.P95Ms, root.P99Ms)
	}
	// Paths: with and without the retry, and the loadgen trace's gateway-only path.
	if len(f.Paths) != 3 {
		t.Fatalf("%d paths: %+v", len(f.Paths), f.Paths)
	}
	main := f.Paths[0]
	if main.Traces != 20-retries || len(main.Hops) != 5 || main.Hops[4].Service != "fraud" {
		t.Errorf("main path: %+v", main)
	}
	retry := f.Paths[1]
	if retry.Traces != retries || retry.Hops[2].Service != "inventory" || retry.Hops[2].Calls != 2 {
		t.Errorf("retry path: %+v", retry)
	}
	// Where errors start on the main path: fraud (spread to payments, orders, gateway)
	// and the INSERT inside orders (spread nowhere).
	byHop := map[string]int{}
	for _, o := range main.Origins {
		byHop[o.Hop.Service+fmt.Sprint(len(o.Spread))] = o.Traces
	}
	wantFraud := count(func(i int) bool { return i%4 == 0 && i%5 != 0 })
	wantInsert := count(func(i int) bool { return i%7 == 3 && i%5 != 0 })
	if byHop["fraud3"] != wantFraud || byHop["orders0"] != wantInsert || len(byHop) != 2 {
		t.Errorf("main path origins %+v, want fraud×%d, orders×%d", main.Origins, wantFraud, wantInsert)
	}
	if main.ErrorTraces != wantFraud+wantInsert {
		t.Errorf("main path errors %d", main.ErrorTraces)
	}
	lg := f.Paths[2]
	if lg.Traces != 1 || len(lg.Hops) != 1 || lg.ErrorTraces != 1 || lg.Origins[0].Hop.Service != "gateway" || lg.ExampleError[0] != "09f1"+strings.Repeat("0", 28) {
		t.Errorf("loadgen path %+v", lg)
	}

	// A limit below the matches: the newest traces, and truncated says more exist.
	f = e.flow(flowQueryStr + "&limit=5")
	if f.TracesExamined != 5 || !f.Truncated || f.Root.Calls != 5 {
		t.Errorf("limit 5: examined %d truncated %v", f.TracesExamined, f.Truncated)
	}
	f = e.flow(flowQueryStr + "&limit=21")
	if f.TracesExamined != 21 || f.Truncated {
		t.Errorf("limit 21: examined %d truncated %v", f.TracesExamined, f.Truncated)
	}
	// A window: traces 5..10 minutes before the base.
	f = e.flow(flowQueryStr + "&start=" + url.QueryEscape(zipkinBase.Add(-10*time.Minute).Format(time.RFC3339)) + "&end=" + fmt.Sprint(zipkinBase.Add(-5*time.Minute).UnixMilli()))
	if f.Traces != 6 {
		t.Errorf("window: %d traces, want 6", f.Traces)
	}
	// Nothing: an empty flow, not an error.
	f = e.flow("service=gateway&operation=nope")
	if f.Traces != 0 || f.Root != nil || len(f.Paths) != 0 {
		t.Errorf("empty flow %+v", f)
	}
}

// Zipkin's shared spans (the server side of a call with the client span's ID) still
// make a hop of their own.
func TestFlowSharedSpans(t *testing.T) {
	e := newZipkinEnv(t, Options{})
	e.api.now = func() time.Time { return zipkinBase.Add(time.Minute) }
	f := e.flow("service=Frontend&operation=GET+/checkout")
	if f.Traces != 1 || f.Root == nil || len(f.Root.Children) != 1 {
		t.Fatalf("flow %+v", f)
	}
	if c := f.Root.Children[0]; c.Service != "backend" || c.SpanKind != "server" {
		t.Errorf("child hop %+v", c)
	}
}

func TestFlowGolden(t *testing.T) {
	e := newFlowEnv(t)
	checkGolden(t, "spoor_flow.json", indentJSON(t, e.zipkinOK("/spoor/api/v1/flows?"+flowQueryStr+"&limit=12&end="+url.QueryEscape(zipkinBase.Format(time.RFC3339Nano)))))
}

func TestFlowBadRequests(t *testing.T) {
	e := newFlowEnv(t)
	for _, tc := range []struct{ query, msg string }{
		{"operation=x", "parameter 'service' is required"},
		{"service=x", "parameter 'operation' is required"},
		{flowQueryStr + "&limit=0", "parameter 'limit' must be an integer from 1 to 2000"},
		{flowQueryStr + "&limit=2001", "parameter 'limit' must be an integer from 1 to 2000"},
		{flowQueryStr + "&limit=x", "parameter 'limit' must be an integer from 1 to 2000"},
		{flowQueryStr + "&start=yesterday", "parameter 'start' must be unix milliseconds or an RFC 3339 time"},
		{flowQueryStr + "&end=x", "parameter 'end' must be unix milliseconds or an RFC 3339 time"},
		{flowQueryStr + "&start=2000&end=1000", "parameter 'end' is before 'start'"},
		{flowQueryStr + "&start=0&end=1000000000000", "exceeds"},
	} {
		e.expectSpoorBadRequest(t, "/spoor/api/v1/flows?"+tc.query, tc.msg)
	}
	api := New(failingReader{err: errFire}, Options{})
	plain := &testEnv{t: t, api: api, srv: newHTTPServer(t, api)}
	if status, _, body := plain.zget("/spoor/api/v1/flows?" + flowQueryStr); status != http.StatusNotImplemented {
		t.Errorf("without a Searcher: %d %s", status, body)
	}
}

func FuzzFlowParams(f *testing.F) {
	for _, s := range []string{
		flowQueryStr, flowQueryStr + "&limit=2000&start=1700000000000&end=2026-03-14T00:00:00Z",
		"service=&operation=", "service=a&operation=b&limit=-1", "service=a&operation=b&start=9999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		fq, err := parseFlowQuery(q, testNow)
		if err != nil {
			if !isParamError(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		if fq.service == "" || fq.operation == "" || fq.limit < 1 || fq.limit > MaxFlowLimit || fq.end.Before(fq.start) || fq.end.Sub(fq.start) > maxRollupRange {
			t.Fatalf("accepted %+v", fq)
		}
	})
}

// Folding arbitrary span trees (cycles, self-parents, duplicate IDs, orphans) never
// panics and counts each trace once.
func TestFlowFoldOddTrees(t *testing.T) {
	f := newFlowFold("a", "op")
	id := pcommon.TraceID{1}
	td := flowFixture(id, zipkinBase, []flowSpec{
		{"a", "op", ptrace.SpanKindServer, 1, 0, 10, true},
		{"b", "x", ptrace.SpanKindServer, 0, 1, 5, true},  // a cycle: a ↔ b
		{"a", "op", ptrace.SpanKindServer, 2, 2, 5, true}, // its own parent
		{"c", "y", ptrace.SpanKindClient, 7, 3, 1, true},  // an orphan
	})
	f.add(id, td)
	f.add(id, flowFixture(id, zipkinBase, []flowSpec{{"z", "other", ptrace.SpanKindServer, -1, 0, 1, false}}))
	if f.examined != 2 || f.traces != 1 {
		t.Fatalf("examined %d folded %d", f.examined, f.traces)
	}
	out := f.export(flowQuery{service: "a", operation: "op", limit: 10})
	if out.Root == nil || out.ErrorTraces != 1 {
		t.Fatalf("%+v", out)
	}
}

// A flow larger than one store page (flowPage): the pages follow one another, the
// newest traces first, each once, and truncated says whether more exist.
func TestFlowsAcrossPages(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.api.now = func() time.Time { return zipkinBase.Add(time.Minute) }
	const n = flowPage + 150
	for i := range n {
		td := checkoutFlow(i % 200)
		setTraceID(td, pcommon.TraceID{0: 9, 8: 9, 14: byte(i >> 8), 15: byte(i)}, time.Duration(i)*time.Second)
		e.write(td)
	}
	window := "&start=" + fmt.Sprint(zipkinBase.Add(-24*time.Hour).UnixMilli())
	for _, c := range []struct {
		limit     int
		truncated bool
	}{{flowPage, true}, {flowPage + 1, true}, {n - 1, true}, {n, false}, {n + 1, false}} {
		f := e.flow(fmt.Sprintf("%s&limit=%d%s", flowQueryStr, c.limit, window))
		want := min(c.limit, n)
		if f.TracesExamined != want || f.Traces != want || f.Root.Calls != want || f.Truncated != c.truncated {
			t.Errorf("limit %d: examined %d, folded %d, root calls %d, truncated %v; want %d and truncated %v",
				c.limit, f.TracesExamined, f.Traces, f.Root.Calls, f.Truncated, want, c.truncated)
		}
	}
}
