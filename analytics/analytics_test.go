package analytics

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/spoortrace/spoor/metrics"
	"github.com/spoortrace/spoor/sampler"
	"github.com/spoortrace/spoor/storage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

var ths = []string{"", "", "", "ot=th:8", "ot=th:c;rv:abcdefabcdefab", "vendor=x,ot=th:fd70a4", "ot=th:e666"}

func thAdj(ts string) float64 {
	switch ts {
	case "":
		return 1
	}
	for _, part := range []string{"th:8", "th:c", "th:fd70a4", "th:e666"} {
		if contains(ts, part) {
			t, _ := sampler.ParseTValue(part[3:])
			return math.Exp2(56) / (math.Exp2(56) - float64(t))
		}
	}
	panic("BUG: unknown th " + ts)
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

type redBrute struct {
	calls, errs float64
	durs        []time.Duration
	hist        storage.Histogram
}

// TestREDMatchesBruteForce: RED rollups read back from the store equal a brute-force
// count over the same spans: calls and errors weighted by the adjusted count of th
// (1 without it), the duration histogram bucket by bucket, and p50/p95/p99 within the
// bucket of the exact quantile.
func TestREDMatchesBruteForce(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
	want := map[string]*redBrute{}
	key := func(m time.Time, svc, op string, kind ptrace.SpanKind) string {
		return fmt.Sprintf("%d|%s|%s|%d", m.Unix(), svc, op, kind)
	}
	for b := range 40 {
		var specs []spanSpec
		for range 1 + rng.IntN(200) {
			s := spanSpec{
				service: fmt.Sprintf("svc-%d", rng.IntN(4)), name: fmt.Sprintf("op-%d", rng.IntN(5)),
				kind:    ptrace.SpanKind(rng.IntN(6)),
				err:     rng.IntN(7) == 0,
				start:   base.Add(time.Duration(rng.Int64N(int64(4 * time.Minute)))),
				dur:     time.Duration(math.Exp(rng.Float64() * 22)), // 1ns … 3.6s
				traceID: randTraceID(rng), spanID: randSpanID(rng),
				tracestate: ths[rng.IntN(len(ths))],
			}
			specs = append(specs, s)
			k := key(s.start.Truncate(time.Minute), s.service, s.name, s.kind)
			w := want[k]
			if w == nil {
				w = &redBrute{}
				want[k] = w
			}
			adj := thAdj(s.tracestate)
			w.calls += adj
			if s.err {
				w.errs += adj
			}
			w.durs = append(w.durs, s.dur)
			w.hist.Add(s.dur, adj)
		}
		td := batch(specs)
		if err := r.proc.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		if b == 20 { // half of the counts in one flush, half in another
			if err := r.p().flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r.sink.SpanCount() == 0 {
		t.Fatal("no span passed through")
	}
	r.stop(t)
	got, err := r.store.ReadRED(context.Background(), storage.RollupQuery{Start: base, End: base.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d series-minutes read, brute force has %d", len(got), len(want))
	}
	for _, g := range got {
		k := key(g.Minute, g.Service, g.Operation, ptrace.SpanKind(g.Kind))
		w := want[k]
		if w == nil {
			t.Fatalf("unexpected series-minute %s", k)
		}
		if !near(g.Calls, w.calls) || !near(g.Errors, w.errs) {
			t.Errorf("%s: calls %v errors %v, brute force %v %v", k, g.Calls, g.Errors, w.calls, w.errs)
		}
		for i := range storage.HistogramBuckets {
			if !near(at(g.Duration, i), at(w.hist, i)) {
				t.Fatalf("%s: histogram bucket %d = %v, brute force %v", k, i, at(g.Duration, i), at(w.hist, i))
			}
		}
		// Unweighted quantiles are only comparable on unweighted series; check the
		// histogram's estimate lands in the exact quantile's bucket for those.
		if g.Calls == float64(len(w.durs)) {
			slices.Sort(w.durs)
			for _, q := range []float64{0.5, 0.95, 0.99} {
				exact := w.durs[int(math.Ceil(q*float64(len(w.durs))))-1]
				est := g.Duration.Quantile(q)
				if storage.HistogramBucket(est) != storage.HistogramBucket(exact) {
					lo, hi := storage.HistogramBounds(storage.HistogramBucket(exact))
					t.Errorf("%s: p%v estimate %v, exact %v in [%v, %v)", k, q*100, est, exact, lo, hi)
				}
			}
		}
	}
}

func (r *rig) p() *analyticsProcessor { return r.p0 }

func at(h storage.Histogram, i int) float64 {
	if i < len(h.Counts) {
		return h.Counts[i]
	}
	return 0
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// traceSpec generates a trace of a call tree across services with client/server
// pairs, producer/consumer pairs, internal spans, calls to uninstrumented peers, and
// errors.
func genTrace(rng *rand.Rand, start time.Time, ts string) []spanSpec {
	tid := randTraceID(rng)
	var out []spanSpec
	var add func(parent pcommon.SpanID, svc string, depth int, t time.Time)
	add = func(parent pcommon.SpanID, svc string, depth int, t time.Time) {
		id := randSpanID(rng)
		kind := ptrace.SpanKindServer
		if parent.IsEmpty() {
			kind = ptrace.SpanKindServer
		} else if rng.IntN(4) == 0 {
			kind = ptrace.SpanKindConsumer
		}
		out = append(out, spanSpec{service: svc, name: "handle", kind: kind, err: rng.IntN(10) == 0, start: t,
			dur: time.Duration(1+rng.IntN(50)) * time.Millisecond, traceID: tid, spanID: id, parent: parent, tracestate: ts})
		if depth == 0 {
			return
		}
		for range rng.IntN(3) {
			cid := randSpanID(rng)
			callee := fmt.Sprintf("svc-%d", rng.IntN(5))
			ck := ptrace.SpanKindClient
			if rng.IntN(4) == 0 {
				ck = ptrace.SpanKindProducer
			}
			cs := spanSpec{service: svc, name: "call " + callee, kind: ck, err: rng.IntN(8) == 0, start: t,
				dur: time.Duration(1+rng.IntN(80)) * time.Millisecond, traceID: tid, spanID: cid, parent: id, tracestate: ts}
			switch rng.IntN(4) {
			case 0: // an uninstrumented peer: no child span answers
				cs.attrs = map[string]string{"peer.service": "db-" + fmt.Sprint(rng.IntN(2))}
				out = append(out, cs)
				continue
			case 1:
				cs.attrs = map[string]string{"server.address": callee}
			}
			out = append(out, cs)
			add(cid, callee, depth-1, t)
		}
		if rng.IntN(3) == 0 { // an internal span of the same service: no edge
			out = append(out, spanSpec{service: svc, name: "internal", kind: ptrace.SpanKindInternal, start: t, dur: time.Millisecond,
				traceID: tid, spanID: randSpanID(rng), parent: id, tracestate: ts})
		}
	}
	add(pcommon.SpanID{}, fmt.Sprintf("svc-%d", rng.IntN(5)), 3, start)
	return out
}

type edgeBrute struct {
	calls, errs float64
	hist        storage.Histogram
}

// bruteEdges computes the service graph of whole traces: every span whose parent
// span has another service is a call (messaging under a producer → consumer), its
// error if either side erred and its latency the caller's when the caller is a client
// or producer; a client or producer span naming a peer that no span of another
// service answers is a call to the peer.
func bruteEdges(spans []spanSpec) map[string]*edgeBrute {
	byID := map[[24]byte]spanSpec{}
	id := func(t pcommon.TraceID, s pcommon.SpanID) (k [24]byte) {
		copy(k[:16], t[:])
		copy(k[16:], s[:])
		return k
	}
	answered := map[[24]byte]bool{}
	for _, s := range spans {
		byID[id(s.traceID, s.spanID)] = s
	}
	out := map[string]*edgeBrute{}
	add := func(m time.Time, p, c string, kind storage.EdgeKind, w float64, isErr bool, lat time.Duration) {
		k := fmt.Sprintf("%d|%s|%s|%d", m.Unix(), p, c, kind)
		e := out[k]
		if e == nil {
			e = &edgeBrute{}
			out[k] = e
		}
		e.calls += w
		if isErr {
			e.errs += w
		}
		e.hist.Add(lat, w)
	}
	caller := func(k ptrace.SpanKind) bool { return k == ptrace.SpanKindClient || k == ptrace.SpanKindProducer }
	for _, c := range spans {
		if c.parent.IsEmpty() {
			continue
		}
		p, ok := byID[id(c.traceID, c.parent)]
		if !ok || p.service == c.service {
			continue
		}
		answered[id(p.traceID, p.spanID)] = true
		kind := storage.EdgeRequest
		if p.kind == ptrace.SpanKindProducer && c.kind == ptrace.SpanKindConsumer {
			kind = storage.EdgeMessaging
		}
		lat := c.dur
		if caller(p.kind) {
			lat = p.dur
		}
		add(c.start.Truncate(time.Minute), p.service, c.service, kind, thAdj(c.tracestate), c.err || (caller(p.kind) && p.err), lat)
	}
	for _, s := range spans {
		if !caller(s.kind) || answered[id(s.traceID, s.spanID)] {
			continue
		}
		peer := s.attrs["peer.service"]
		if peer == "" {
			peer = s.attrs["server.address"]
		}
		if peer == "" || peer == s.service {
			continue
		}
		add(s.start.Truncate(time.Minute), s.service, peer, storage.EdgePeer, thAdj(s.tracestate), s.err, s.dur)
	}
	return out
}

// TestGraphMatchesBruteForce: the service graph read back from the store equals the
// one computed from the whole traces, although each trace's spans arrive shuffled and
// split over batches (children before parents, parents before children), with
// upstream th weighting.
func TestGraphMatchesBruteForce(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Minute)
	var all, pool []spanSpec
	for range 300 {
		tr := genTrace(rng, base.Add(time.Duration(rng.Int64N(int64(2*time.Minute)))), ths[rng.IntN(len(ths))])
		all = append(all, tr...)
		pool = append(pool, tr...)
	}
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	for len(pool) > 0 {
		n := min(len(pool), 1+rng.IntN(100))
		if err := r.proc.ConsumeTraces(context.Background(), batch(pool[:n])); err != nil {
			t.Fatal(err)
		}
		pool = pool[n:]
	}
	r.stop(t)
	want := bruteEdges(all)
	got, err := r.store.ReadEdges(context.Background(), storage.RollupQuery{Start: base, End: base.Add(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var peers, messaging int
	for _, g := range got {
		k := fmt.Sprintf("%d|%s|%s|%d", g.Minute.Unix(), g.Parent, g.Child, g.Kind)
		w := want[k]
		if w == nil {
			t.Errorf("edge %s (%v calls) not in the brute-force graph", k, g.Calls)
			continue
		}
		delete(want, k)
		if !near(g.Calls, w.calls) || !near(g.Errors, w.errs) {
			t.Errorf("edge %s: calls %v errors %v, brute force %v %v", k, g.Calls, g.Errors, w.calls, w.errs)
		}
		for i := range storage.HistogramBuckets {
			if !near(at(g.Latency, i), at(w.hist, i)) {
				t.Errorf("edge %s: latency bucket %d = %v, brute force %v", k, i, at(g.Latency, i), at(w.hist, i))
				break
			}
		}
		switch g.Kind {
		case storage.EdgePeer:
			peers++
		case storage.EdgeMessaging:
			messaging++
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("brute-force edge %s missing", k)
	}
	if peers == 0 || messaging == 0 || len(got) < 50 {
		t.Errorf("%d edges, %d to peers, %d messaging: the generator must cover every kind", len(got), peers, messaging)
	}
}

// TestSpansPassUnchanged: the processor hands every span on, unmodified.
func TestSpansPassUnchanged(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	rng := rand.New(rand.NewPCG(5, 6))
	td := batch(genTrace(rng, time.Now(), "ot=th:c"))
	want := ptrace.NewTraces()
	td.CopyTo(want)
	if err := r.proc.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	got := r.sink.AllTraces()
	if len(got) != 1 {
		t.Fatalf("%d batches passed on", len(got))
	}
	m := ptrace.ProtoMarshaler{}
	a, _ := m.MarshalTraces(got[0])
	b, _ := m.MarshalTraces(want)
	if string(a) != string(b) {
		t.Fatal("the batch was modified")
	}
}

// TestMetricsWithoutMetricsExtension: with no spoor_metrics to serve them, the RED
// metrics are observed through the OTel SDK (the collector's own endpoint), with the
// weighted counts.
func TestMetricsWithoutMetricsExtension(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	rng := rand.New(rand.NewPCG(7, 8))
	specs := []spanSpec{
		{service: "pay", name: "charge", kind: ptrace.SpanKindServer, start: time.Now(), dur: time.Millisecond, traceID: randTraceID(rng), spanID: randSpanID(rng), tracestate: "ot=th:c"},
		{service: "pay", name: "charge", kind: ptrace.SpanKindServer, err: true, start: time.Now(), dur: time.Second, traceID: randTraceID(rng), spanID: randSpanID(rng)},
	}
	if err := r.proc.ConsumeTraces(context.Background(), batch(specs)); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[float64])
			if !ok {
				continue
			}
			switch m.Name {
			case "spoor_span_calls_total", "spoor_span_errors_total":
				want := map[string]float64{"spoor_span_calls_total": 5, "spoor_span_errors_total": 1}[m.Name]
				if len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != want || !sum.IsMonotonic {
					t.Errorf("%s = %+v, want one point of %v (th:c counts 4)", m.Name, sum.DataPoints, want)
				}
				found[m.Name] = true
			case "spoor_span_duration_seconds_bucket":
				// 1 ms at th:c (4) and 1 s (1): le=0.001 holds 4, le=1 and +Inf hold 5.
				want := map[string]float64{"0.001": 4, "0.0025": 4, "0.5": 4, "1": 5, "+Inf": 5}
				n := 0
				for _, dp := range sum.DataPoints {
					le, _ := dp.Attributes.Value("le")
					if w, ok := want[le.AsString()]; ok {
						n++
						if dp.Value != w {
							t.Errorf("duration bucket le=%s = %v, want %v", le.AsString(), dp.Value, w)
						}
					}
				}
				found[m.Name] = n == len(want) && len(sum.DataPoints) == len(durationBounds)+1 && sum.IsMonotonic
			}
		}
	}
	for _, n := range []string{"spoor_span_calls_total", "spoor_span_errors_total", "spoor_span_duration_seconds_bucket"} {
		if !found[n] {
			t.Errorf("metric %s missing or wrong", n)
		}
	}
}

// TestMetricsWithExemplars: with spoor_metrics running, the processor registers its RED
// families there (and the SDK leaves them out): weighted counts, a real histogram, and
// exemplars — an error span's trace on both counters, the slowest span in its bucket.
func TestMetricsWithExemplars(t *testing.T) {
	mf := metrics.NewFactory()
	mcfg := mf.CreateDefaultConfig().(*metrics.Config)
	mcfg.Endpoint = freeAddr(t)
	mext, err := mf.Create(context.Background(), extensiontest.NewNopSettings(mf.Type()), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := mext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mext.Shutdown(context.Background()) })
	r := newRigExt(t, t.TempDir(), nil, map[component.ID]component.Component{component.NewID(metrics.Type): mext})
	rng := rand.New(rand.NewPCG(7, 8))
	okID, errID, slowID := randTraceID(rng), randTraceID(rng), randTraceID(rng)
	errSpan, slowSpan := randSpanID(rng), randSpanID(rng)
	now := time.Now()
	specs := []spanSpec{
		{service: "pay", name: "charge", kind: ptrace.SpanKindServer, start: now, dur: time.Millisecond, traceID: okID, spanID: randSpanID(rng), tracestate: "ot=th:c"},
		{service: "pay", name: "charge", kind: ptrace.SpanKindServer, err: true, start: now, dur: 20 * time.Millisecond, traceID: errID, spanID: errSpan},
		{service: "pay", name: "charge", kind: ptrace.SpanKindServer, start: now, dur: 2 * time.Second, traceID: slowID, spanID: slowSpan},
		{service: "pay", name: "refund", kind: ptrace.SpanKindServer, start: now, dur: 3 * time.Millisecond, traceID: okID, spanID: randSpanID(rng)},
	}
	if err := r.proc.ConsumeTraces(context.Background(), batch(specs)); err != nil {
		t.Fatal(err)
	}
	// The SDK no longer observes the RED families.
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if strings.HasPrefix(m.Name, "spoor_span_") {
				if sum, ok := m.Data.(metricdata.Sum[float64]); ok && len(sum.DataPoints) > 0 {
					t.Errorf("%s still observed through the SDK while spoor_metrics serves it", m.Name)
				}
			}
		}
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range r.p0.families() {
		fams[f.GetName()] = f
	}
	exemplarOf := func(e *dto.Exemplar) (trace, span string, v float64) {
		if e == nil {
			return "", "", 0
		}
		for _, l := range e.Label {
			switch l.GetName() {
			case "trace_id":
				trace = l.GetValue()
			case "span_id":
				span = l.GetValue()
			}
		}
		return trace, span, e.GetValue()
	}
	charge := func(f *dto.MetricFamily) *dto.Metric {
		for _, m := range f.GetMetric() {
			if labelsString(m.Label) == "service_name=pay,span_kind=server,span_name=charge" {
				return m
			}
		}
		t.Fatalf("%s has no series for pay/charge/server: %v", f.GetName(), f)
		return nil
	}
	for name, want := range map[string]float64{"spoor_span_calls_total": 6, "spoor_span_errors_total": 1} {
		f := fams[name]
		if f == nil || f.GetType() != dto.MetricType_COUNTER {
			t.Fatalf("family %s missing or not a counter: %v", name, f)
		}
		m := charge(f)
		if m.Counter.GetValue() != want {
			t.Errorf("%s = %v, want %v (th:c counts 4)", name, m.Counter.GetValue(), want)
		}
		tr, sp, v := exemplarOf(m.Counter.Exemplar)
		if tr != hex.EncodeToString(errID[:]) || sp != hex.EncodeToString(errSpan[:]) || v != 1 {
			t.Errorf("%s exemplar %v, want the error span %x/%x with value 1", name, m.Counter.Exemplar, errID, errSpan)
		}
	}
	dur := fams["spoor_span_duration_seconds"]
	if dur == nil || dur.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("spoor_span_duration_seconds missing or not a histogram: %v", dur)
	}
	h := charge(dur).Histogram
	if h.GetSampleCountFloat() != 6 || math.Abs(h.GetSampleSum()-(4*0.001+0.02+2)) > 1e-9 {
		t.Errorf("histogram count %v sum %v, want 6 and 2.024", h.GetSampleCountFloat(), h.GetSampleSum())
	}
	wantCum := map[float64]float64{0.001: 4, 0.025: 5, 1: 5, 2.5: 6, math.Inf(1): 6}
	for _, b := range h.Bucket {
		if w, ok := wantCum[b.GetUpperBound()]; ok && b.GetCumulativeCountFloat() != w {
			t.Errorf("bucket le=%v = %v, want %v", b.GetUpperBound(), b.GetCumulativeCountFloat(), w)
		}
		tr, sp, v := exemplarOf(b.Exemplar)
		if b.GetUpperBound() == 2.5 {
			if tr != hex.EncodeToString(slowID[:]) || sp != hex.EncodeToString(slowSpan[:]) || v != 2 {
				t.Errorf("bucket le=2.5 exemplar %v, want the slowest span %x with value 2", b.Exemplar, slowID)
			}
		} else if tr != "" {
			t.Errorf("bucket le=%v has exemplar %v; only the batch's slowest span is one", b.GetUpperBound(), b.Exemplar)
		}
	}
	// After shutdown the families are withdrawn and the SDK observes them again.
	r.stop(t)
	if r.p0.exposed.Load() {
		t.Error("still marked as served by spoor_metrics after shutdown")
	}
}

func labelsString(ls []*dto.LabelPair) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestAdjustedCount(t *testing.T) {
	for ts, want := range map[string]float64{
		"": 1, "ot=th:0": 1, "ot=th:8": 2, "ot=th:c": 4, "ot=rv:abcdefabcdefab;th:c": 4, "a=b, ot=th:8": 2,
		"ot=th:zz": 1, "other=th:8": 1, "ot=rv:abcdefabcdefab": 1,
	} {
		if got := adjustedCount(ts); got != want {
			t.Errorf("adjustedCount(%q) = %v, want %v", ts, got, want)
		}
	}
}
