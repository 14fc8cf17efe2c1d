package query

import (
	"cmp"
	"context"
	"encoding/hex"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// GET /spoor/api/v1/flows: the aggregated flow of one entry operation across services.
// The newest traces (at most limit) in which a span of the entry service and operation
// starts in the window are folded, on the server, into
//   - a tree of hops: every place a request of the flow entered a service (a root, a
//     server or consumer span, or a span called from another service), keyed by the
//     chain of hops above it, with calls, traces reaching it, calls that failed inside
//     it, how often the trace's failure started there, and latency percentiles;
//   - the distinct paths: the hops one trace took, in order, with their count, error
//     share, latency of the entry and where their failures started.
//
// A trace's failure starts at its origin: among the failed spans under the entry none
// of whose descendants failed (the deepest link of each chain of errors), the one that
// ended first, since an error is reported up the chain after it happened. Counts are of
// the traces examined (the stored sample), not weighted by sampling.

const (
	// DefaultFlowLimit is how many traces GET /spoor/api/v1/flows folds without limit.
	DefaultFlowLimit = 500
	// MaxFlowLimit bounds limit: every trace is read whole.
	MaxFlowLimit = 2000
	// flowPage is how many traces are read from the store at once, so that a flow holds
	// one page of spans in memory, not the whole sample. Pages are large because each
	// page after the first walks again the index entries of those before it (the
	// store's cursor), reading their summaries: 100 made a 200-trace flow read 501
	// summaries for its 200 traces.
	flowPage = 500
	// flowExamples is how many example trace IDs a hop or a path carries, per outcome.
	flowExamples = 5
)

// flowQuery is a parsed GET /spoor/api/v1/flows.
type flowQuery struct {
	service, operation string
	start, end         time.Time
	limit              int
}

func parseFlowQuery(q url.Values, now time.Time) (flowQuery, error) {
	var f flowQuery
	if f.service = q.Get("service"); f.service == "" {
		return f, badParam("parameter 'service' is required")
	}
	if f.operation = q.Get("operation"); f.operation == "" {
		return f, badParam("parameter 'operation' is required")
	}
	var err error
	if f.start, f.end, err = parseTimeRange(q, now); err != nil {
		return f, err
	}
	f.limit = DefaultFlowLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxFlowLimit {
			return f, badParam("parameter 'limit' must be an integer from 1 to %d, got %q", MaxFlowLimit, truncate(v))
		}
		f.limit = n
	}
	return f, nil
}

// GET /spoor/api/v1/flows?service=&operation=&start=&end=&limit=
func (a *API) spoorFlows(c echo.Context) error {
	fq, err := parseFlowQuery(c.QueryParams(), a.now())
	if err != nil {
		return a.spoorFailure(c, "parse parameters", err)
	}
	searcher, ok := a.reader.(storage.Searcher)
	if !ok {
		return a.spoorError(c, http.StatusNotImplemented, "flows are not supported by this trace store")
	}
	f, err := fq.run(c.Request().Context(), searcher)
	if err != nil {
		return a.spoorFailure(c, "read the traces of the flow", err)
	}
	return a.writeOwn(c, f.export(fq))
}

// run folds the newest traces of the entry, a page at a time.
func (fq *flowQuery) run(ctx context.Context, searcher storage.Searcher) (*flowFold, error) {
	f := newFlowFold(fq.service, fq.operation)
	q := storage.TraceQuery{ServiceName: fq.service, OperationName: fq.operation, StartTimeMin: fq.start, StartTimeMax: fq.end}
	for {
		q.Limit = min(flowPage, fq.limit-f.examined)
		last := q.Limit == fq.limit-f.examined
		if last {
			// One trace more than the flow folds tells whether there are more, without
			// a search of its own (which would walk this page's entries again).
			q.Limit++
		}
		res, err := searcher.SearchTraces(ctx, q, storage.WithSpans)
		if err != nil {
			return nil, err
		}
		for i := range res.Traces {
			if f.examined == fq.limit {
				f.truncated = true
				return f, nil
			}
			f.add(res.Summaries[i].TraceID, res.Traces[i])
		}
		if res.NextCursor == "" || last {
			return f, nil
		}
		q.Cursor = res.NextCursor
	}
}

// hopID names a hop: the service entered, the operation and span kind of the span that
// entered it.
type hopID struct{ service, operation, kind string }

func (h hopID) less(o hopID) int {
	return cmp.Or(cmp.Compare(h.service, o.service), cmp.Compare(h.operation, o.operation), cmp.Compare(h.kind, o.kind))
}

type hopNode struct {
	id                             hopID
	depth                          int
	calls, traces, errors, origins int
	durations                      []int64
	okEx, errEx                    []string
	children                       map[hopID]*hopNode
	// seenIn is the number of the last trace that reached the hop, and failed whether
	// a call of the hop failed in it.
	seenIn int
	failed bool
}

type pathHop struct {
	id    hopID
	calls int // consecutive calls of the same hop (retries)
}

type pathOrigin struct {
	hop    hopID
	spread []hopID
	traces int
}

type flowPath struct {
	hops                []pathHop
	traces, errorTraces int
	durations           []int64
	origins             map[string]*pathOrigin
	okEx, errEx         []string
}

// flowFold accumulates the flow of one entry operation.
type flowFold struct {
	service, operation  string
	root                *hopNode
	paths               map[string]*flowPath
	examined            int // traces read
	traces, errorTraces int // traces folded (the entry found), and of them with an error
	truncated           bool

	// Scratch reused across traces.
	spans      []flowSpan
	byID       map[pcommon.SpanID]int32
	order      []int32
	hopOf      []int32
	nodeOf     map[int32]*hopNode
	touched    []*hopNode
	below      []bool
	callFailed []bool
}

// flowSpan is one span of a trace in the parent/child tree.
type flowSpan struct {
	span     ptrace.Span
	service  string
	kind     string
	parent   int32 // -1: none stored
	children []int32
	failed   bool
	visited  bool
}

func newFlowFold(service, operation string) *flowFold {
	return &flowFold{service: service, operation: operation, paths: map[string]*flowPath{}, byID: map[pcommon.SpanID]int32{}, nodeOf: map[int32]*hopNode{}}
}

// entersService reports whether the span is where a request enters its service.
func (f *flowFold) entersService(i int32) bool {
	s := &f.spans[i]
	if s.parent < 0 || s.kind == "server" || s.kind == "consumer" {
		return true
	}
	return f.spans[s.parent].service != s.service
}

// add folds one trace; a trace without the entry operation is counted as examined only.
func (f *flowFold) add(id pcommon.TraceID, td ptrace.Traces) {
	f.examined++
	traceID := hex.EncodeToString(id[:])
	// Zipkin's shared spans give a server span its client's ID: the uniquifier (without
	// clock skew adjustment) makes the tree a tree.
	td, _ = adjustTrace(td, 0)
	f.spans = f.spans[:0]
	clear(f.byID)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc := ""
		if v, ok := rss.At(i).Resource().Attributes().Get(attrServiceName); ok {
			svc = v.AsString()
		}
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				kind := spanKindTag(sp.Kind())
				if kind == "" {
					kind = "unspecified"
				}
				n := int32(len(f.spans))
				f.spans = append(f.spans, flowSpan{span: sp, service: svc, kind: kind, parent: -1, failed: sp.Status().Code() == ptrace.StatusCodeError})
				if _, dup := f.byID[sp.SpanID()]; !dup {
					f.byID[sp.SpanID()] = n
				}
			}
		}
	}
	for i := range f.spans {
		s := &f.spans[i]
		if p, ok := f.byID[s.span.ParentSpanID()]; ok && !s.span.ParentSpanID().IsEmpty() && int(p) != i {
			s.parent = p
			f.spans[p].children = append(f.spans[p].children, int32(i))
		}
	}
	for i := range f.spans {
		slices.SortFunc(f.spans[i].children, func(a, b int32) int {
			return cmp.Or(cmp.Compare(f.spans[a].span.StartTimestamp(), f.spans[b].span.StartTimestamp()), cmp.Compare(a, b))
		})
	}
	top := f.findEntry()
	if top < 0 {
		return
	}
	f.traces++

	// Pre-order walk of the entry's subtree (a visited mark guards against parent
	// cycles), each span tagged with the hop it belongs to.
	f.order = f.order[:0]
	f.hopOf = slices.Grow(f.hopOf[:0], len(f.spans))[:len(f.spans)]
	stack := []int32{top}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		s := &f.spans[i]
		if s.visited {
			continue
		}
		s.visited = true
		f.order = append(f.order, i)
		f.hopOf[i] = i
		if i != top && !f.entersService(i) {
			f.hopOf[i] = f.hopOf[s.parent]
		}
		for c := len(s.children) - 1; c >= 0; c-- {
			stack = append(stack, s.children[c])
		}
	}
	origin := f.errorOrigin()
	traceFailed := origin >= 0
	if traceFailed {
		f.errorTraces++
	}

	// Hops: the tree node of each hop span, keyed by the chain of hops above it.
	clear(f.nodeOf)
	f.touched = f.touched[:0]
	var hops []pathHop
	// A call of a hop failed when a span of it (the hop's span, or one below it in the
	// same service) failed.
	f.callFailed = slices.Grow(f.callFailed[:0], len(f.spans))[:len(f.spans)]
	clear(f.callFailed)
	for _, i := range f.order {
		if f.spans[i].failed {
			f.callFailed[f.hopOf[i]] = true
		}
	}
	for _, i := range f.order {
		if f.hopOf[i] != i {
			continue
		}
		s := &f.spans[i]
		hid := hopID{s.service, s.span.Name(), s.kind}
		var n *hopNode
		if i == top {
			if f.root == nil {
				f.root = &hopNode{id: hid, children: map[hopID]*hopNode{}}
			}
			n = f.root
		} else {
			parent := f.nodeOf[f.hopOf[s.parent]]
			if n = parent.children[hid]; n == nil {
				n = &hopNode{id: hid, depth: parent.depth + 1, children: map[hopID]*hopNode{}}
				parent.children[hid] = n
			}
		}
		f.nodeOf[i] = n
		n.calls++
		n.durations = append(n.durations, spanDuration(s.span))
		if n.seenIn != f.traces {
			n.seenIn, n.failed = f.traces, false
			n.traces++
			f.touched = append(f.touched, n)
		}
		if f.callFailed[i] {
			n.errors++
			n.failed = true
		}
		if len(hops) > 0 && hops[len(hops)-1].id == hid {
			hops[len(hops)-1].calls++
		} else {
			hops = append(hops, pathHop{id: hid, calls: 1})
		}
	}
	for _, n := range f.touched {
		ex := &n.okEx
		if n.failed {
			ex = &n.errEx
		}
		if len(*ex) < flowExamples {
			*ex = append(*ex, traceID)
		}
	}
	if traceFailed {
		f.nodeOf[f.hopOf[origin]].origins++
	}

	// Paths.
	sig := pathSignature(hops)
	p := f.paths[sig]
	if p == nil {
		p = &flowPath{hops: hops, origins: map[string]*pathOrigin{}}
		f.paths[sig] = p
	}
	p.traces++
	p.durations = append(p.durations, spanDuration(f.spans[top].span))
	if !traceFailed {
		if len(p.okEx) < flowExamples {
			p.okEx = append(p.okEx, traceID)
		}
		return
	}
	p.errorTraces++
	if len(p.errEx) < flowExamples {
		p.errEx = append(p.errEx, traceID)
	}
	where := f.spans[f.hopOf[origin]]
	o := pathOrigin{hop: hopID{where.service, where.span.Name(), where.kind}, spread: f.spreadOf(origin, top)}
	k := pathSignature(append([]pathHop{{id: o.hop}}, hopsOf(o.spread)...))
	if po := p.origins[k]; po != nil {
		po.traces++
	} else {
		o.traces = 1
		p.origins[k] = &o
	}
}

func hopsOf(ids []hopID) []pathHop {
	out := make([]pathHop, len(ids))
	for i, id := range ids {
		out[i] = pathHop{id: id, calls: 1}
	}
	return out
}

func pathSignature(hops []pathHop) string {
	var b strings.Builder
	for _, h := range hops {
		b.WriteString(h.id.service)
		b.WriteByte(0)
		b.WriteString(h.id.operation)
		b.WriteByte(0)
		b.WriteString(h.id.kind)
		b.WriteByte(0)
		b.WriteString(strconv.Itoa(h.calls))
		b.WriteByte(1)
	}
	return b.String()
}

func spanDuration(sp ptrace.Span) int64 {
	if sp.EndTimestamp() <= sp.StartTimestamp() {
		return 0
	}
	return int64(sp.EndTimestamp() - sp.StartTimestamp())
}

// findEntry returns the earliest span of the entry service and operation with no such
// span above it (normally the root), or -1.
func (f *flowFold) findEntry() int32 {
	best := int32(-1)
	for i := range f.spans {
		s := &f.spans[i]
		if s.service != f.service || s.span.Name() != f.operation {
			continue
		}
		nested := false
		for a, steps := s.parent, 0; a >= 0 && steps < len(f.spans); a, steps = f.spans[a].parent, steps+1 {
			if f.spans[a].service == f.service && f.spans[a].span.Name() == f.operation {
				nested = true
				break
			}
		}
		if !nested && (best < 0 || s.span.StartTimestamp() < f.spans[best].span.StartTimestamp()) {
			best = int32(i)
		}
	}
	return best
}

// errorOrigin returns where the failure under the entry started (see the top of the
// file), or -1 when no span under it failed. f.order is the entry's subtree in
// pre-order, so its reverse sees children before parents.
func (f *flowFold) errorOrigin() int32 {
	f.below = slices.Grow(f.below[:0], len(f.spans))[:len(f.spans)]
	clear(f.below)
	best := int32(-1)
	for k := len(f.order) - 1; k >= 0; k-- {
		i := f.order[k]
		s := &f.spans[i]
		for _, c := range s.children {
			if f.spans[c].visited && (f.spans[c].failed || f.below[c]) {
				f.below[i] = true
			}
		}
		if !s.failed || f.below[i] {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := f.spans[best].span
		if e, be := s.span.EndTimestamp(), b.EndTimestamp(); e < be || (e == be && s.span.StartTimestamp() < b.StartTimestamp()) {
			best = i
		}
	}
	return best
}

// spreadOf lists the hops the failure reached on its way up from origin to top: the
// hops of origin's failed ancestors, nearest first, each once in a row, origin's own hop
// left out.
func (f *flowFold) spreadOf(origin, top int32) []hopID {
	var out []hopID
	own := f.hopOf[origin]
	for a := f.spans[origin].parent; a >= 0 && f.spans[a].visited; a = f.spans[a].parent {
		if f.spans[a].failed {
			h := &f.spans[f.hopOf[a]]
			id := hopID{h.service, h.span.Name(), h.kind}
			if f.hopOf[a] != own && (len(out) == 0 || out[len(out)-1] != id) {
				out = append(out, id)
			}
		}
		if a == top {
			break
		}
	}
	return out
}

// The answer's shapes (openapi.json: Flow).

type flowHopJSON struct {
	Service    string  `json:"service"`
	Operation  string  `json:"operation"`
	SpanKind   string  `json:"spanKind"`
	Depth      int     `json:"depth"`
	Calls      int     `json:"calls"`
	Traces     int     `json:"traces"`
	Errors     int     `json:"errors"`
	ErrorShare float64 `json:"errorShare"`
	Origins    int     `json:"origins"`
	latencyJSON
	ExampleOK    []string       `json:"exampleOk"`
	ExampleError []string       `json:"exampleError"`
	Children     []*flowHopJSON `json:"children"`
}

type flowHopRefJSON struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	SpanKind  string `json:"spanKind"`
}

type flowPathHopJSON struct {
	flowHopRefJSON
	Calls int `json:"calls"`
}

type flowOriginJSON struct {
	Hop    flowHopRefJSON   `json:"hop"`
	Spread []flowHopRefJSON `json:"spread"`
	Traces int              `json:"traces"`
}

type flowPathJSON struct {
	Hops        []flowPathHopJSON `json:"hops"`
	Traces      int               `json:"traces"`
	ErrorTraces int               `json:"errorTraces"`
	ErrorShare  float64           `json:"errorShare"`
	latencyJSON
	Origins      []flowOriginJSON `json:"origins"`
	ExampleOK    []string         `json:"exampleOk"`
	ExampleError []string         `json:"exampleError"`
}

type flowJSON struct {
	Service        string          `json:"service"`
	Operation      string          `json:"operation"`
	Start          time.Time       `json:"start"`
	End            time.Time       `json:"end"`
	Limit          int             `json:"limit"`
	TracesExamined int             `json:"tracesExamined"`
	Truncated      bool            `json:"truncated"`
	Traces         int             `json:"traces"`
	ErrorTraces    int             `json:"errorTraces"`
	ErrorShare     float64         `json:"errorShare"`
	Root           *flowHopJSON    `json:"root"`
	Paths          []*flowPathJSON `json:"paths"`
}

func (f *flowFold) export(fq flowQuery) flowJSON {
	out := flowJSON{
		Service: fq.service, Operation: fq.operation, Start: fq.start.UTC(), End: fq.end.UTC(), Limit: fq.limit,
		TracesExamined: f.examined, Truncated: f.truncated, Traces: f.traces, ErrorTraces: f.errorTraces,
		ErrorShare: share(f.errorTraces, f.traces), Paths: []*flowPathJSON{},
	}
	if f.root != nil {
		out.Root = exportHop(f.root)
	}
	for _, p := range f.paths {
		pj := &flowPathJSON{Traces: p.traces, ErrorTraces: p.errorTraces, ErrorShare: share(p.errorTraces, p.traces),
			latencyJSON: exactLatencies(p.durations), Origins: []flowOriginJSON{}, ExampleOK: nonNil(p.okEx), ExampleError: nonNil(p.errEx)}
		for _, h := range p.hops {
			pj.Hops = append(pj.Hops, flowPathHopJSON{flowHopRefJSON: hopRef(h.id), Calls: h.calls})
		}
		keys := make([]string, 0, len(p.origins))
		for k := range p.origins {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			return cmp.Or(cmp.Compare(p.origins[b].traces, p.origins[a].traces), cmp.Compare(a, b))
		})
		for _, k := range keys {
			o := p.origins[k]
			oj := flowOriginJSON{Hop: hopRef(o.hop), Spread: []flowHopRefJSON{}, Traces: o.traces}
			for _, s := range o.spread {
				oj.Spread = append(oj.Spread, hopRef(s))
			}
			pj.Origins = append(pj.Origins, oj)
		}
		out.Paths = append(out.Paths, pj)
	}
	slices.SortFunc(out.Paths, func(a, b *flowPathJSON) int {
		if c := cmp.Compare(b.Traces, a.Traces); c != 0 {
			return c
		}
		for i := 0; i < min(len(a.Hops), len(b.Hops)); i++ {
			x, y := a.Hops[i], b.Hops[i]
			if c := cmp.Or(hopID{x.Service, x.Operation, x.SpanKind}.less(hopID{y.Service, y.Operation, y.SpanKind}), cmp.Compare(x.Calls, y.Calls)); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(a.Hops), len(b.Hops))
	})
	return out
}

func exportHop(n *hopNode) *flowHopJSON {
	j := &flowHopJSON{Service: n.id.service, Operation: n.id.operation, SpanKind: n.id.kind, Depth: n.depth,
		Calls: n.calls, Traces: n.traces, Errors: n.errors, ErrorShare: share(n.errors, n.calls), Origins: n.origins,
		latencyJSON: exactLatencies(n.durations), ExampleOK: nonNil(n.okEx), ExampleError: nonNil(n.errEx), Children: []*flowHopJSON{}}
	kids := make([]*hopNode, 0, len(n.children))
	for _, c := range n.children {
		kids = append(kids, c)
	}
	slices.SortFunc(kids, func(a, b *hopNode) int { return cmp.Or(cmp.Compare(b.traces, a.traces), a.id.less(b.id)) })
	for _, c := range kids {
		j.Children = append(j.Children, exportHop(c))
	}
	return j
}

func hopRef(id hopID) flowHopRefJSON {
	return flowHopRefJSON{Service: id.service, Operation: id.operation, SpanKind: id.kind}
}

func share(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// exactLatencies are nearest-rank percentiles of durations (ns), in milliseconds to the
// microsecond; durations is sorted in place.
func exactLatencies(durations []int64) latencyJSON {
	if len(durations) == 0 {
		return latencyJSON{}
	}
	slices.Sort(durations)
	q := func(p float64) float64 {
		i := min(len(durations)-1, max(0, int(math.Ceil(p*float64(len(durations))))-1))
		return math.Round(float64(durations[i])/1e3) / 1e3
	}
	return latencyJSON{P50: q(0.5), P95: q(0.95), P99: q(0.99)}
}
