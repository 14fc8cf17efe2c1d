package query

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/spoortrace/spoor/storage"
)

// Spoor's own API, under /spoor/api/v1 (a prefix none of the compatible surfaces of
// REFERENCE.md §1 uses): RED series, the service graph and alert rules, from the
// rollups the analytics stage computes on every span before sampling. Counts are
// weighted by adjusted count, so they are estimates of the true volume (floats).
// Errors use the Spoor API's error shape ({"error":{"status","message"}}), as the
// rest of /spoor/api/v1 does.

// DefaultRollupLookback is the range of /spoor/api/v1/red and /graph without start.
const DefaultRollupLookback = time.Hour

// maxRollupRange bounds one query: the retention of the rollups is that of the spans.
const maxRollupRange = 31 * 24 * time.Hour

// parseRollupRange reads start and end: unix milliseconds or RFC 3339; end defaults
// to now, start to end - DefaultRollupLookback.
func parseRollupRange(c echo.Context, now time.Time) (start, end time.Time, err error) {
	return parseTimeRange(c.QueryParams(), now)
}

// parseTimeRange is parseRollupRange on parsed query parameters.
func parseTimeRange(q url.Values, now time.Time) (start, end time.Time, err error) {
	parse := func(name string) (time.Time, error) {
		s := q.Get(name)
		if s == "" {
			return time.Time{}, nil
		}
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 {
			return time.UnixMilli(ms), nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, badParam("parameter '%s' must be unix milliseconds or an RFC 3339 time, got %q", name, truncate(s))
		}
		return t, nil
	}
	if end, err = parse("end"); err != nil {
		return
	}
	if end.IsZero() {
		end = now
	}
	if start, err = parse("start"); err != nil {
		return
	}
	if start.IsZero() {
		start = end.Add(-DefaultRollupLookback)
	}
	if end.Before(start) {
		return start, end, badParam("parameter 'end' is before 'start'")
	}
	if end.Sub(start) > maxRollupRange {
		return start, end, badParam("the range from 'start' to 'end' exceeds %v", maxRollupRange)
	}
	return start, end, nil
}

func (a *API) rollupReader(c echo.Context) (storage.RollupReader, bool) {
	rr, ok := a.reader.(storage.RollupReader)
	if !ok {
		_ = a.spoorError(c, http.StatusNotImplemented, "analytics rollups are not supported by this trace store")
	}
	return rr, ok
}

type latencyJSON struct {
	P50 float64 `json:"p50Ms"`
	P95 float64 `json:"p95Ms"`
	P99 float64 `json:"p99Ms"`
}

func latencies(h storage.Histogram) latencyJSON {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return latencyJSON{P50: ms(h.Quantile(0.5)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99))}
}

func rate(errs, calls float64) float64 {
	if calls <= 0 {
		return 0
	}
	return errs / calls
}

type redPointJSON struct {
	Minute time.Time `json:"minute"`
	Calls  float64   `json:"calls"`
	Errors float64   `json:"errors"`
	latencyJSON
}

type redSeriesJSON struct {
	Service   string  `json:"service"`
	Operation string  `json:"operation"`
	SpanKind  string  `json:"spanKind"`
	Calls     float64 `json:"calls"`
	Errors    float64 `json:"errors"`
	ErrorRate float64 `json:"errorRate"`
	latencyJSON
	Points []redPointJSON `json:"points"`
}

// redServiceJSON is one service's requests: its SERVER and CONSUMER spans (the calls it
// answered), or all its spans when it has none of those, with percentiles from the
// merged histograms of those series (exact to the histogram's buckets, unlike any mix of
// per-operation percentiles).
type redServiceJSON struct {
	Service   string   `json:"service"`
	SpanKinds []string `json:"spanKinds"`
	Calls     float64  `json:"calls"`
	Errors    float64  `json:"errors"`
	ErrorRate float64  `json:"errorRate"`
	latencyJSON
}

func entryKind(kind string) bool { return kind == "server" || kind == "consumer" }

// redServices folds the series (with their merged histograms) into one row per service.
func redServices(series []*redSeriesJSON, hist func(*redSeriesJSON) *storage.Histogram) []*redServiceJSON {
	var out []*redServiceJSON
	for i := 0; i < len(series); {
		j := i
		entries := false
		for ; j < len(series) && series[j].Service == series[i].Service; j++ {
			entries = entries || entryKind(series[j].SpanKind)
		}
		row := &redServiceJSON{Service: series[i].Service, SpanKinds: []string{}}
		var h storage.Histogram
		for _, s := range series[i:j] {
			if entries && !entryKind(s.SpanKind) {
				continue
			}
			row.Calls += s.Calls
			row.Errors += s.Errors
			h.Merge(*hist(s))
			if !slices.Contains(row.SpanKinds, s.SpanKind) {
				row.SpanKinds = append(row.SpanKinds, s.SpanKind)
			}
		}
		slices.Sort(row.SpanKinds)
		row.ErrorRate = rate(row.Errors, row.Calls)
		row.latencyJSON = latencies(h)
		out = append(out, row)
		i = j
	}
	return out
}

var spanKinds = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

func spanKindName(k uint8) string {
	if int(k) < len(spanKinds) {
		return spanKinds[k]
	}
	return "unspecified"
}

// GET /spoor/api/v1/red?service=&start=&end=&spanKind=: per (service, operation, span
// kind), calls, errors, error rate and p50/p95/p99 over the range, and per minute.
func (a *API) spoorRED(c echo.Context) error {
	start, end, err := parseRollupRange(c, a.now())
	if err != nil {
		return a.spoorFailure(c, "parse parameters", err)
	}
	kind, err := parseSpanKind(c.QueryParam("spanKind"))
	if err != nil {
		return a.spoorFailure(c, "parse parameters", err)
	}
	rr, ok := a.rollupReader(c)
	if !ok {
		return nil
	}
	rows, err := rr.ReadRED(c.Request().Context(), storage.RollupQuery{Start: start, End: end, Service: c.QueryParam("service")})
	if err != nil {
		return a.spoorFailure(c, "read RED rollups", err)
	}
	type key struct {
		svc, op string
		kind    uint8
	}
	byKey := map[key]*redSeriesJSON{}
	hists := map[key]*storage.Histogram{}
	for _, r := range rows {
		if kind != "" && spanKindName(r.Kind) != kind {
			continue
		}
		k := key{r.Service, r.Operation, r.Kind}
		s := byKey[k]
		if s == nil {
			s = &redSeriesJSON{Service: r.Service, Operation: r.Operation, SpanKind: spanKindName(r.Kind), Points: []redPointJSON{}}
			byKey[k], hists[k] = s, &storage.Histogram{}
		}
		s.Calls += r.Calls
		s.Errors += r.Errors
		hists[k].Merge(r.Duration)
		s.Points = append(s.Points, redPointJSON{Minute: r.Minute, Calls: r.Calls, Errors: r.Errors, latencyJSON: latencies(r.Duration)})
	}
	out := make([]*redSeriesJSON, 0, len(byKey))
	histOf := map[*redSeriesJSON]*storage.Histogram{}
	for k, s := range byKey {
		s.ErrorRate = rate(s.Errors, s.Calls)
		s.latencyJSON = latencies(*hists[k])
		histOf[s] = hists[k]
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *redSeriesJSON) int {
		return cmp.Or(cmp.Compare(x.Service, y.Service), cmp.Compare(x.Operation, y.Operation), cmp.Compare(x.SpanKind, y.SpanKind))
	})
	services := redServices(out, func(s *redSeriesJSON) *storage.Histogram { return histOf[s] })
	if services == nil {
		services = []*redServiceJSON{}
	}
	return a.writeOwn(c, map[string]any{"start": start.UTC(), "end": end.UTC(), "services": services, "series": out})
}

type graphEdgeJSON struct {
	Parent    string  `json:"parent"`
	Child     string  `json:"child"`
	Kind      string  `json:"kind"`
	Calls     float64 `json:"calls"`
	Errors    float64 `json:"errors"`
	ErrorRate float64 `json:"errorRate"`
	latencyJSON
}

type graphNodeJSON struct {
	Name string `json:"name"`
	// Instrumented is false for a peer only known from its callers' spans.
	Instrumented bool `json:"instrumented"`
}

var edgeKinds = [...]string{storage.EdgeRequest: "request", storage.EdgeMessaging: "messaging", storage.EdgePeer: "peer"}

// GET /spoor/api/v1/graph?start=&end=&service=: the service graph of the range, one
// edge per (parent, child, kind) with calls, errors and latency percentiles.
func (a *API) spoorGraph(c echo.Context) error {
	start, end, err := parseRollupRange(c, a.now())
	if err != nil {
		return a.spoorFailure(c, "parse parameters", err)
	}
	rr, ok := a.rollupReader(c)
	if !ok {
		return nil
	}
	rows, err := rr.ReadEdges(c.Request().Context(), storage.RollupQuery{Start: start, End: end, Service: c.QueryParam("service")})
	if err != nil {
		return a.spoorFailure(c, "read edge rollups", err)
	}
	type key struct {
		parent, child string
		kind          storage.EdgeKind
	}
	edges := map[key]*graphEdgeJSON{}
	hists := map[key]*storage.Histogram{}
	nodes := map[string]bool{}
	for _, r := range rows {
		k := key{r.Parent, r.Child, r.Kind}
		e := edges[k]
		if e == nil {
			kind := "request"
			if int(r.Kind) < len(edgeKinds) {
				kind = edgeKinds[r.Kind]
			}
			e = &graphEdgeJSON{Parent: r.Parent, Child: r.Child, Kind: kind}
			edges[k], hists[k] = e, &storage.Histogram{}
		}
		e.Calls += r.Calls
		e.Errors += r.Errors
		hists[k].Merge(r.Latency)
		nodes[r.Parent] = true
		if r.Kind != storage.EdgePeer {
			nodes[r.Child] = true
		} else if _, ok := nodes[r.Child]; !ok {
			nodes[r.Child] = false
		}
	}
	outEdges := make([]*graphEdgeJSON, 0, len(edges))
	for k, e := range edges {
		e.ErrorRate = rate(e.Errors, e.Calls)
		e.latencyJSON = latencies(*hists[k])
		outEdges = append(outEdges, e)
	}
	slices.SortFunc(outEdges, func(x, y *graphEdgeJSON) int {
		return cmp.Or(cmp.Compare(x.Parent, y.Parent), cmp.Compare(x.Child, y.Child), cmp.Compare(x.Kind, y.Kind))
	})
	outNodes := make([]graphNodeJSON, 0, len(nodes))
	for n, inst := range nodes {
		outNodes = append(outNodes, graphNodeJSON{Name: n, Instrumented: inst})
	}
	slices.SortFunc(outNodes, func(x, y graphNodeJSON) int { return cmp.Compare(x.Name, y.Name) })
	return a.writeOwn(c, map[string]any{"start": start.UTC(), "end": end.UTC(), "nodes": outNodes, "edges": outEdges})
}

// GET /spoor/api/v1/alerts: every rule with its state and example traces, the recent
// firings, and the webhook's health, as the alert engine last recorded them (it does
// so on every change, at most every evaluation interval).
func (a *API) spoorAlerts(c echo.Context) error {
	as, ok := a.reader.(storage.AlertStateStore)
	if !ok {
		return a.spoorError(c, http.StatusNotImplemented, "alert state is not supported by this trace store")
	}
	doc, err := as.GetAlertState(c.Request().Context())
	if err != nil {
		return a.spoorFailure(c, "get alert state", err)
	}
	if len(doc) == 0 {
		doc = []byte(`{"rules":[],"firings":[]}`)
	}
	return writeJSON(c, http.StatusOK, doc)
}

func (a *API) writeOwn(c echo.Context, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		panic("BUG: query API cannot encode its own answer: " + err.Error())
	}
	return writeJSON(c, http.StatusOK, body)
}

// rollupDependencies answers /api/dependencies from the analytics edges when the store
// has them: they count every span before sampling (weighted by adjusted count, rounded
// here), where the store's own counts see only the sampled spans.
func (a *API) rollupDependencies(ctx context.Context, end time.Time, lookback time.Duration) ([]storage.DependencyLink, bool, error) {
	rr, ok := a.reader.(storage.RollupReader)
	if !ok || !rr.HasRollups() {
		return nil, false, nil
	}
	rows, err := rr.ReadEdges(ctx, storage.RollupQuery{Start: end.Add(-lookback), End: end})
	if err != nil {
		return nil, true, err
	}
	type pair struct{ parent, child string }
	sums := map[pair][2]float64{}
	for _, r := range rows {
		p := pair{r.Parent, r.Child}
		s := sums[p]
		s[0] += r.Calls
		s[1] += r.Errors
		sums[p] = s
	}
	out := make([]storage.DependencyLink, 0, len(sums))
	for p, s := range sums {
		out = append(out, storage.DependencyLink{Parent: p.parent, Child: p.child,
			CallCount: uint64(math.Round(s[0])), ErrorCount: uint64(math.Round(s[1]))})
	}
	slices.SortFunc(out, func(x, y storage.DependencyLink) int {
		return cmp.Or(cmp.Compare(x.Parent, y.Parent), cmp.Compare(x.Child, y.Child))
	})
	return out, true, nil
}
