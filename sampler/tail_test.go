package sampler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

// tspan is one span of a tail test batch.
type tspan struct {
	service    string
	tid        pcommon.TraceID
	sid        pcommon.SpanID
	start, dur time.Duration // from the epoch of the test
	err        bool
	attrs      map[string]string
	ts         string
}

func tbatch(spans ...tspan) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, s := range spans {
		if s.service == "" {
			s.service = "svc"
		}
		ss, ok := bySvc[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			bySvc[s.service] = ss
		}
		sp := ss.AppendEmpty()
		sp.SetName("op")
		sp.SetTraceID(s.tid)
		sp.SetSpanID(s.sid)
		base := time.Unix(1_700_000_000, 0)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(s.start + s.dur)))
		if s.err {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		for k, v := range s.attrs {
			sp.Attributes().PutStr(k, v)
		}
		sp.TraceState().FromRaw(s.ts)
	}
	return td
}

// clock is a test's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func tailCfg(pct float64) *Config {
	c := cfgWith(Equalizing, pct)
	c.Tail.Enabled = true
	c.Tail.Policies.LatencyThreshold = 500 * time.Millisecond
	return c
}

func newTail(t testing.TB, cfg *Config, mp *sdkmetric.MeterProvider) (*headProcessor, *clock) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	var p *headProcessor
	var err error
	if mp != nil {
		p, err = newHeadProcessor(cfg, mp)
	} else {
		p, err = newHeadProcessor(cfg, noop.NewMeterProvider())
	}
	if err != nil {
		t.Fatalf("new processor: %v", err)
	}
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	p.tail.now = c.now
	return p, c
}

// out collects the spans a processor passed on, by trace: "spanID tracestate".
type out map[pcommon.TraceID][]string

func (o out) add(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				o[sp.TraceID()] = append(o[sp.TraceID()], sp.SpanID().String()+" "+sp.TraceState().AsRaw())
			}
		}
	}
}

// held are the stage's held batches, oldest first.
func (t *tailStage) held() []*heldBatch { return t.queue[t.qHead:] }

// headKeeps says whether head sampling alone keeps a trace with an empty tracestate.
func headKeeps(p *headProcessor, tid pcommon.TraceID) bool {
	return p.decide(tid, "", &p.def, nil).keep
}

// A trace whose spans arrive over several batches and seconds is kept or dropped whole:
// kept when any span errs (even the last one, seconds after the others, at 1% head
// sampling), else exactly when head sampling keeps it. Kept spans of error traces head
// sampling dropped carry no th; head-kept ones carry th.
func TestTailTraceOverBatchesAndSeconds(t *testing.T) {
	// At 1% nearly every span is held (a scope's spans move to the held batch at once);
	// at 80% few are (they move one by one).
	for _, pct := range []float64{1, 80} {
		t.Run(fmt.Sprintf("%v%%", pct), func(t *testing.T) { testTailTraceOverBatches(t, pct) })
	}
}

func testTailTraceOverBatches(t *testing.T, pct float64) {
	p, clk := newTail(t, tailCfg(pct), nil)
	rng := rand.New(rand.NewPCG(11, 11))
	const traces, spansPer, batches = 3000, 6, 3
	all := make([][]tspan, batches)
	isErr := map[pcommon.TraceID]bool{}
	for i := 0; i < traces; i++ {
		tid := randTID(rng)
		errAt := -1
		if i%3 == 0 {
			errAt = rng.IntN(spansPer)
			isErr[tid] = true
		}
		for j := 0; j < spansPer; j++ {
			// An upstream th on some spans: it must not survive a tail keep.
			ts := ""
			if j == 1 {
				ts = "ot=th:0;rv:" + fmt.Sprintf("%014x", TraceIDRandomness(tid))
			}
			s := tspan{service: fmt.Sprintf("svc%d", j%2), tid: tid, sid: randSID(rng), dur: time.Millisecond, err: j == errAt, ts: ts}
			b := rng.IntN(batches)
			all[b] = append(all[b], s)
		}
	}
	got := out{}
	for _, b := range all {
		got.add(run(t, p, tbatch(b...)))
		clk.advance(2 * time.Second) // the trace's spans span 4 s, under the 5 s wait
	}
	clk.advance(10 * time.Second)
	p.tail.sweep(context.Background())

	headKept, errKept := 0, 0
	for i := 0; i < batches; i++ {
		for _, s := range all[i] {
			_, isKept := got[s.tid]
			if want := isErr[s.tid] || headKeeps(p, s.tid); isKept != want {
				t.Fatalf("trace %s (error %v, head keeps %v): kept %v", s.tid, isErr[s.tid], headKeeps(p, s.tid), isKept)
			}
		}
	}
	for tid, spans := range got {
		if len(spans) != spansPer {
			t.Fatalf("trace %s: %d of %d spans kept: %v", tid, len(spans), spansPer, spans)
		}
		head := headKeeps(p, tid)
		for _, s := range spans {
			hasTH := strings.Contains(s, "th:")
			if head != hasTH {
				t.Fatalf("trace %s (head keeps %v): span %q", tid, head, s)
			}
		}
		if head {
			headKept++
		} else {
			errKept++
		}
	}
	if headKept == 0 || float64(errKept) < float64(traces)/3*(1-pct/100)*0.8 {
		t.Fatalf("kept %d head-sampled and %d error traces of %d", headKept, errKept, traces)
	}
	if tl := p.tail; tl.heldTraces != 0 || tl.heldSpans != 0 || tl.retained != 0 || tl.retainedTraces != 0 || len(tl.held()) != 0 {
		t.Fatalf("after the sweep %d traces and %d spans are still held, %d spans and %d traces retained in %d batches",
			tl.heldTraces, tl.heldSpans, tl.retained, tl.retainedTraces, len(tl.held()))
	}
}

// dropTID returns a trace ID that head sampling at p drops.
func dropTID(t *testing.T, p *headProcessor, rng *rand.Rand) pcommon.TraceID {
	t.Helper()
	for range 1000 {
		if tid := randTID(rng); !headKeeps(p, tid) {
			return tid
		}
	}
	t.Fatal("no dropped trace ID found")
	return pcommon.TraceID{}
}

// Each policy keeps a head-dropped trace whole, its earlier held spans included; a trace
// that matches none is dropped when its wait ends.
func TestTailPolicies(t *testing.T) {
	cfg := tailCfg(1)
	cfg.Tail.Policies.Attributes = []AttributeRule{
		{Key: "customer.tier", Value: "gold"},
		{Key: "http.route", Regex: "^/checkout"},
	}
	for _, c := range []struct {
		name   string
		first  tspan // arrives first, alone
		second tspan // arrives a second later
		kept   bool
	}{
		{"nothing", tspan{dur: time.Millisecond}, tspan{start: 10 * time.Millisecond, dur: time.Millisecond}, false},
		{"error", tspan{dur: time.Millisecond}, tspan{err: true}, true},
		{"slow span", tspan{dur: time.Millisecond}, tspan{dur: 600 * time.Millisecond}, true},
		// Neither span reaches 500 ms, though together they cover 600 ms: a span is
		// judged by its own duration (a trace's root covers it, and decides when it comes).
		{"fast spans of a slow trace", tspan{dur: 300 * time.Millisecond}, tspan{start: 300 * time.Millisecond, dur: 300 * time.Millisecond}, false},
		{"attribute value", tspan{}, tspan{attrs: map[string]string{"customer.tier": "gold"}}, true},
		{"attribute other value", tspan{}, tspan{attrs: map[string]string{"customer.tier": "silver"}}, false},
		{"attribute regex", tspan{}, tspan{attrs: map[string]string{"http.route": "/checkout/{id}"}}, true},
		{"attribute regex miss", tspan{}, tspan{attrs: map[string]string{"http.route": "/cart"}}, false},
		{"resource attribute", tspan{}, tspan{service: "payments", attrs: nil}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, clk := newTail(t, cfg, nil)
			tid := dropTID(t, p, rand.New(rand.NewPCG(3, 3)))
			c.first.tid, c.first.sid = tid, sid(1)
			c.second.tid, c.second.sid = tid, sid(2)
			got := out{}
			got.add(run(t, p, tbatch(c.first)))
			if len(got) != 0 {
				t.Fatalf("first span passed before any decision: %v", got)
			}
			clk.advance(time.Second)
			got.add(run(t, p, tbatch(c.second)))
			clk.advance(5 * time.Second)
			p.tail.sweep(context.Background())
			if n := len(got[tid]); (c.kept && n != 2) || (!c.kept && n != 0) {
				t.Fatalf("kept %d spans (%v), want the trace kept: %v", n, got[tid], c.kept)
			}
		})
	}
}

// A resource attribute matches a rule as a span attribute does.
func TestTailResourceAttribute(t *testing.T) {
	cfg := tailCfg(1)
	cfg.Tail.Policies.Attributes = []AttributeRule{{Key: "service.name", Value: "payments"}}
	p, _ := newTail(t, cfg, nil)
	tid := dropTID(t, p, rand.New(rand.NewPCG(4, 4)))
	got := out{}
	got.add(run(t, p, tbatch(tspan{service: "gateway", tid: tid, sid: sid(1)})))
	got.add(run(t, p, tbatch(tspan{service: "payments", tid: tid, sid: sid(2)})))
	if len(got[tid]) != 2 {
		t.Fatalf("kept %v, want both spans", got[tid])
	}
}

// A span that arrives after a policy kept its trace is kept, its th erased. A trace
// whose wait ended is not remembered: its later spans are held afresh, so a late error
// span is kept (with what of the trace is still held) rather than lost.
func TestTailLateSpans(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	p, clk := newTail(t, tailCfg(1), sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	rng := rand.New(rand.NewPCG(5, 5))
	kept, dropped := dropTID(t, p, rng), dropTID(t, p, rng)
	got := out{}
	got.add(run(t, p, tbatch(tspan{tid: kept, sid: sid(1), err: true}, tspan{tid: dropped, sid: sid(2)})))
	clk.advance(6 * time.Second)
	p.tail.sweep(context.Background())
	got.add(run(t, p, tbatch(
		tspan{tid: kept, sid: sid(3), ts: "ot=th:8;rv:" + fmt.Sprintf("%014x", TraceIDRandomness(kept))},
		tspan{tid: dropped, sid: sid(4)},
	)))
	if want := []string{sid(1).String() + " ", sid(3).String() + " ot=rv:" + fmt.Sprintf("%014x", TraceIDRandomness(kept))}; fmt.Sprint(got[kept]) != fmt.Sprint(want) {
		t.Errorf("kept trace: %v, want %v (late span kept, its th erased)", got[kept], want)
	}
	if len(got[dropped]) != 0 || p.tail.heldSpans != 1 {
		t.Errorf("dropped trace: %v passed, %d spans held; want its late span held", got[dropped], p.tail.heldSpans)
	}
	clk.advance(time.Second)
	got.add(run(t, p, tbatch(tspan{tid: dropped, sid: sid(5), err: true})))
	if want := []string{sid(5).String() + " ", sid(4).String() + " "}; fmt.Sprint(got[dropped]) != fmt.Sprint(want) {
		t.Errorf("dropped trace after its late error: %v, want %v (the error span, then the held late span)", got[dropped], want)
	}
	m := collect(t, reader, "mode")
	for k, v := range map[string]int64{
		"spoor_sampler_tail_late_spans sampled=true":         1,
		"spoor_sampler_tail_late_spans sampled=false":        0,
		"spoor_sampler_tail_traces policy=error":             2,
		"spoor_sampler_tail_traces policy=none":              1,
		"spoor_sampler_tail_spans policy=error sampled=true": 4,
		"spoor_sampler_tail_spans policy=none sampled=false": 1,
		"spoor_sampler_tail_buffered_spans":                  0,
		"spoor_sampler_tail_buffered_traces":                 0,
	} {
		if m[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, m[k], v, m)
		}
	}
}

// collect reads the int64 sums as "name attr=value ...", leaving out the attributes
// named in skip.
func collect(t *testing.T, reader *sdkmetric.ManualReader, skip ...string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				k := m.Name
				for _, kv := range dp.Attributes.ToSlice() {
					if !slices.Contains(skip, string(kv.Key)) {
						k += " " + string(kv.Key) + "=" + kv.Value.Emit()
					}
				}
				got[k] += dp.Value
			}
		}
	}
	return got
}

// Under the memory cap nothing grows past it: held traces and spans, the queue and the
// decision cache stay within their bounds, and what did not fit got its head decision
// and was counted. Every head-dropped span is accounted for.
func TestTailMemoryCap(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	cfg := tailCfg(0)
	cfg.Tail.MaxTraces, cfg.Tail.MaxSpans, cfg.Tail.DecisionCache = 100, 700, 300
	p, clk := newTail(t, cfg, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	rng := rand.New(rand.NewPCG(6, 6))
	total, errTraces := 0, 0
	for b := 0; b < 200; b++ {
		var spans []tspan
		for i := 0; i < 20; i++ {
			tid := randTID(rng)
			n := 1 + rng.IntN(12)
			// One trace in a batch of two errs: kept whole with its batch.
			for j := 0; j < n; j++ {
				spans = append(spans, tspan{tid: tid, sid: randSID(rng), dur: time.Millisecond, err: i == 0 && j == n-1 && b%2 == 0})
			}
			if i == 0 && b%2 == 0 {
				errTraces++
			}
			total += n
		}
		run(t, p, tbatch(spans...))
		tl := p.tail
		if tl.retainedTraces > cfg.Tail.MaxTraces || tl.retained > cfg.Tail.MaxSpans || len(tl.kept.m) > cfg.Tail.DecisionCache ||
			tl.heldTraces > tl.retainedTraces || tl.heldSpans > tl.retained || len(tl.queue) > 64+2*cfg.Tail.MaxSpans {
			t.Fatalf("batch %d: %d traces (%d held), %d spans (%d held), queue %d, %d decisions remembered: over the cap",
				b, tl.retainedTraces, tl.heldTraces, tl.retained, tl.heldSpans, len(tl.queue), len(tl.kept.m))
		}
		// Memory: the spans and traces of the held batches not yet freed (kept traces'
		// spans included, until their batch goes) are what max_spans and max_traces bound.
		var retained, traces, held, heldTraces, inBatches int
		for _, hb := range tl.held() {
			retained += hb.spans
			traces += hb.traces()
			held += hb.spans - hb.cutSpans
			heldTraces += hb.traces() - hb.cutTraces
			inBatches += spansWithData(t, hb)
			if (hb.filter == nil) != (len(hb.tids) <= heldFilterMin) {
				t.Fatalf("batch %d: a held batch of %d traces has a filter: %v", b, len(hb.tids), hb.filter != nil)
			}
			for _, tid := range hb.tids {
				if hb.runsOf(tid) == 0 {
					t.Fatalf("batch %d: a held batch does not find its trace %s", b, tid)
				}
			}
		}
		if retained != tl.retained || traces != tl.retainedTraces || held != tl.heldSpans || heldTraces != tl.heldTraces || inBatches != retained {
			t.Fatalf("batch %d: held batches have %d spans (%d with data), %d traces, %d and %d held; counted %d, %d, %d, %d",
				b, retained, inBatches, traces, held, heldTraces, tl.retained, tl.retainedTraces, tl.heldSpans, tl.heldTraces)
		}
		clk.advance(10 * time.Millisecond)
	}
	m := collect(t, reader, "mode")
	degraded := m["spoor_sampler_tail_degraded_spans reason=max_traces"] + m["spoor_sampler_tail_degraded_spans reason=max_spans"]
	if m["spoor_sampler_tail_degraded_traces reason=max_traces"] == 0 || m["spoor_sampler_tail_degraded_traces reason=max_spans"] == 0 {
		t.Errorf("no degraded traces counted by both reasons: %v", m)
	}
	if m["spoor_sampler_tail_traces policy=error"] != int64(errTraces) {
		t.Errorf("%d error traces kept, want %d", m["spoor_sampler_tail_traces policy=error"], errTraces)
	}
	if got := degraded + m["spoor_sampler_tail_spans policy=error sampled=true"] + m["spoor_sampler_tail_buffered_spans"]; got != int64(total) {
		t.Errorf("degraded %d + kept + held = %d, want every one of %d spans (all: %v)", degraded, got, total, m)
	}
	if m["spoor_sampler_tail_buffered_spans"] != int64(p.tail.heldSpans) || m["spoor_sampler_tail_buffered_traces"] != int64(p.tail.heldTraces) {
		t.Errorf("buffered gauges %v, held %d spans of %d traces", m, p.tail.heldSpans, p.tail.heldTraces)
	}
	if err := p.tail.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tl := p.tail; tl.retained != 0 || tl.retainedTraces != 0 || tl.heldSpans != 0 || tl.heldTraces != 0 || len(tl.held()) != 0 {
		t.Errorf("after shutdown %d spans and %d traces retained, %d and %d held, %d batches: want none",
			tl.retained, tl.retainedTraces, tl.heldSpans, tl.heldTraces, len(tl.held()))
	}
	if m := collect(t, reader, "mode"); m["spoor_sampler_tail_buffered_spans"] != 0 || m["spoor_sampler_tail_degraded_spans reason=shutdown"] == 0 {
		t.Errorf("after shutdown: %v, want nothing held and the dropped spans counted", m)
	}
}

// Through the factory, with the real timer: a held trace is dropped when its wait ends,
// an error trace is stored with the batch that decided it, and Shutdown (without Start,
// and twice) stops every goroutine.
func TestTailProcessorLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.SamplingPercentage = 1
	cfg.Tail.Enabled = true
	cfg.Tail.DecisionWait = 50 * time.Millisecond
	sink := &consumertest.TracesSink{}
	ctx := context.Background()

	idle, err := f.CreateTraces(ctx, processortest.NewNopSettings(Type), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown without start: %v", err)
	}

	proc, err := f.CreateTraces(ctx, processortest.NewNopSettings(Type), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := proc.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	hp := newProc(t, cfgWith(Equalizing, 1))
	rng := rand.New(rand.NewPCG(8, 8))
	quiet, failing := dropTID(t, hp, rng), dropTID(t, hp, rng)
	if err := proc.ConsumeTraces(ctx, tbatch(tspan{tid: quiet, sid: sid(1)}, tspan{tid: failing, sid: sid(2)})); err != nil {
		t.Fatal(err)
	}
	if sink.SpanCount() != 0 {
		t.Fatalf("%d spans passed before any decision", sink.SpanCount())
	}
	time.Sleep(200 * time.Millisecond) // past the wait: quiet is dropped by the timer
	if err := proc.ConsumeTraces(ctx, tbatch(tspan{tid: failing, sid: sid(3), err: true}, tspan{tid: quiet, sid: sid(4), err: true})); err != nil {
		t.Fatal(err)
	}
	got := out{}
	for _, td := range sink.AllTraces() {
		got.add(td)
	}
	if fmt.Sprint(got[failing], got[quiet]) != fmt.Sprint([]string{sid(3).String() + " "}, []string{sid(4).String() + " "}) || len(got) != 2 {
		// Both traces' first spans were dropped by the timer when their 50 ms ended;
		// the late error spans are kept, as what is left of their traces.
		t.Fatalf("got %v: want the two late error spans alone", got)
	}
	// A trace decided within its wait keeps its held span.
	third := dropTID(t, hp, rng)
	if err := proc.ConsumeTraces(ctx, tbatch(tspan{tid: third, sid: sid(5)})); err != nil {
		t.Fatal(err)
	}
	if err := proc.ConsumeTraces(ctx, tbatch(tspan{tid: third, sid: sid(6), err: true})); err != nil {
		t.Fatal(err)
	}
	got = out{}
	for _, td := range sink.AllTraces() {
		got.add(td)
	}
	if len(got[third]) != 2 {
		t.Fatalf("trace decided within its wait: %v, want both spans", got[third])
	}
	if err := proc.ConsumeTraces(ctx, tbatch(tspan{tid: dropTID(t, hp, rng), sid: sid(7)})); err != nil {
		t.Fatal(err)
	}
	if err := proc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The deferred call is the second.
}

func TestTailConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*TailConfig)
		want string
	}{
		{"default", func(*TailConfig) {}, ""},
		{"no wait", func(c *TailConfig) { c.DecisionWait = 0 }, "decision_wait"},
		{"no traces", func(c *TailConfig) { c.MaxTraces = 0 }, "max_traces"},
		{"no spans", func(c *TailConfig) { c.MaxSpans = -1 }, "max_spans"},
		{"negative cache", func(c *TailConfig) { c.DecisionCache = -1 }, "decision_cache"},
		{"no policy", func(c *TailConfig) { c.Policies = PoliciesConfig{} }, "without any policy"},
		{"both value and regex", func(c *TailConfig) { c.Policies.Attributes = []AttributeRule{{Key: "k", Value: "v", Regex: "r"}} }, "exactly one"},
		{"no key", func(c *TailConfig) { c.Policies.Attributes = []AttributeRule{{Value: "v"}} }, "key is empty"},
		{"bad regex", func(c *TailConfig) { c.Policies.Attributes = []AttributeRule{{Key: "k", Regex: "("}} }, "regex"},
	} {
		cfg := createDefaultConfig()
		cfg.Tail.Enabled = true
		c.edit(&cfg.Tail)
		err := cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// spansWithData counts the spans of a held batch that are not empty slots (moved or
// dropped), in either of its forms: pdata while its batch is walked, encoded after.
func spansWithData(t *testing.T, hb *heldBatch) int {
	t.Helper()
	td := hb.td
	if hb.data != nil {
		var err error
		if td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(hb.data); err != nil {
			t.Fatalf("sealed held batch: %v", err)
		}
	}
	n := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				if !spans.At(k).TraceID().IsEmpty() {
					n++
				}
			}
		}
	}
	return n
}

// A scope whose spans are mostly held moves to the held batch whole; its kept spans come
// back to the batch, in order, and its dropped spans leave no data behind: when the held
// trace is kept later, exactly its spans are released.
func TestTailPlaceMostlyHeld(t *testing.T) {
	p, clk := newTail(t, tailCfg(1), nil)
	rng := rand.New(rand.NewPCG(13, 13))
	held, late := dropTID(t, p, rng), dropTID(t, p, rng)
	var kept pcommon.TraceID
	for !headKeeps(p, kept) {
		kept = randTID(rng)
	}
	got := out{}
	got.add(run(t, p, tbatch(tspan{tid: late, sid: sid(9)})))
	clk.advance(6 * time.Second)
	p.tail.sweep(context.Background()) // late's wait ends: dropped
	got.add(run(t, p, tbatch(
		tspan{tid: held, sid: sid(1)},
		tspan{tid: kept, sid: sid(2)},
		tspan{tid: held, sid: sid(3)},
		tspan{tid: late, sid: sid(4)},
		tspan{tid: held, sid: sid(5)},
		tspan{tid: kept, sid: sid(6)},
	)))
	if fmt.Sprint(got[kept]) != fmt.Sprint([]string{sid(2).String() + " ot=th:fd70a", sid(6).String() + " ot=th:fd70a"}) {
		t.Fatalf("head-kept spans: %v, want both, in order, with th", got[kept])
	}
	if len(got[held]) != 0 || len(got[late]) != 0 {
		t.Fatalf("held %v and late %v passed", got[held], got[late])
	}
	// late's wait ended without a match, so it is not remembered: its span is held
	// afresh, beside held's three.
	hbs := p.tail.held()
	if len(hbs) != 1 || spansWithData(t, hbs[0]) != 4 || p.tail.retained != 4 || fmt.Sprint(hbs[0].tids) != fmt.Sprint([]pcommon.TraceID{held, late, held}) {
		t.Fatalf("held batches %d, with %d spans of data, %d retained: want one, with the 4 held spans of runs held, late, held", len(hbs), spansWithData(t, hbs[0]), p.tail.retained)
	}
	got.add(run(t, p, tbatch(tspan{tid: held, sid: sid(7), err: true})))
	slices.Sort(got[held])
	if want := []string{sid(1).String() + " ", sid(3).String() + " ", sid(5).String() + " ", sid(7).String() + " "}; fmt.Sprint(got[held]) != fmt.Sprint(want) {
		t.Fatalf("kept trace: %v, want %v", got[held], want)
	}
	// The batch stays until its wait ends, for late's span.
	if tl := p.tail; len(got[late]) != 0 || tl.retained != 4 || tl.heldSpans != 1 || tl.heldTraces != 1 || hbs[0].cutTraces != 2 {
		t.Fatalf("after the keep: late %v, %d retained, %d spans and %d traces held, %d runs cut", got[late], tl.retained, tl.heldSpans, tl.heldTraces, hbs[0].cutTraces)
	}
}

// A held trace kept in a later batch comes out of its sealed (encoded) held batch
// exactly as it went in — every span field, its resource and scope with their schema
// URLs — and without the spans of the other traces held beside it.
func TestTailSealedBatchReleasesSpansIntact(t *testing.T) {
	p, clk := newTail(t, tailCfg(10), nil)
	rng := rand.New(rand.NewPCG(31, 31))
	keep, other := dropTID(t, p, rng), dropTID(t, p, rng)
	in := ptrace.NewTraces()
	for r := range 2 {
		rs := in.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
		rs.Resource().Attributes().PutInt("pid", int64(100+r))
		rs.Resource().SetDroppedAttributesCount(2)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.SetSchemaUrl("https://example.com/scope")
		ss.Scope().SetName("lib")
		ss.Scope().SetVersion("1.2.3")
		ss.Scope().Attributes().PutBool("scoped", true)
		for k := range 4 {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(keep)
			if k%2 == 1 {
				sp.SetTraceID(other)
			}
			sp.SetSpanID(sid(byte(10*r + k + 1)))
			sp.SetParentSpanID(sid(99))
			sp.SetName(fmt.Sprintf("op-%d", k))
			sp.SetKind(ptrace.SpanKindConsumer)
			sp.SetFlags(0x301)
			sp.TraceState().FromRaw("vendor=x,other=y")
			sp.SetStartTimestamp(pcommon.Timestamp(1_800_000_000_000_000_000 + k))
			sp.SetEndTimestamp(pcommon.Timestamp(1_800_000_000_005_000_000 + k))
			sp.Attributes().PutStr("s", "v")
			sp.Attributes().PutDouble("d", 1.5)
			sp.Attributes().PutEmptySlice("list").AppendEmpty().SetInt(7)
			sp.Attributes().PutEmptyMap("map").PutEmptyBytes("b").FromRaw([]byte{1, 2, 3})
			sp.SetDroppedAttributesCount(3)
			ev := sp.Events().AppendEmpty()
			ev.SetName("ev")
			ev.SetTimestamp(pcommon.Timestamp(1_800_000_000_001_000_000))
			ev.Attributes().PutStr("e", "f")
			sp.SetDroppedEventsCount(4)
			l := sp.Links().AppendEmpty()
			l.SetTraceID(other)
			l.SetSpanID(sid(77))
			l.TraceState().FromRaw("l=1")
			l.SetFlags(1)
			sp.SetDroppedLinksCount(5)
			sp.Status().SetCode(ptrace.StatusCodeOk)
			sp.Status().SetMessage("fine")
		}
	}
	want := ptrace.NewTraces()
	in.CopyTo(want)
	if got := run(t, p, in); got.SpanCount() != 0 {
		t.Fatalf("head sampling passed %d spans of traces it drops", got.SpanCount())
	}
	if hbs := p.tail.held(); len(hbs) != 1 || hbs[0].data == nil {
		t.Fatalf("the held batch is not sealed once its batch ended: %d held batches", len(hbs))
	}
	clk.advance(time.Second)
	got := run(t, p, tbatch(tspan{tid: keep, sid: sid(50), err: true}))
	// The batch's own error span, then the released spans: every resource and scope
	// of the held batch with a span of the trace.
	rss := got.ResourceSpans()
	if rss.Len() != 3 {
		t.Fatalf("%d resources out, want the 2 released and the batch's own", rss.Len())
	}
	wantRSS := want.ResourceSpans()
	for r := range 2 {
		wantRSS.At(r).ScopeSpans().At(0).Spans().RemoveIf(func(sp ptrace.Span) bool { return sp.TraceID() != keep })
	}
	wantRSS.RemoveIf(func(rs ptrace.ResourceSpans) bool { return rs.Resource().Attributes().Len() == 0 })
	gotOnly := ptrace.NewTraces()
	for r := 1; r < 3; r++ {
		rss.At(r).CopyTo(gotOnly.ResourceSpans().AppendEmpty())
	}
	var m ptrace.JSONMarshaler
	wb, err1 := m.MarshalTraces(want)
	gb, err2 := m.MarshalTraces(gotOnly)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if string(wb) != string(gb) {
		t.Fatalf("released spans differ from the held ones:\n got %s\nwant %s", gb, wb)
	}
	if p.tail.heldSpans != 4 || p.tail.retained != 8 {
		t.Fatalf("%d spans held, %d retained: want the other trace's 4 held, and the 8 of the sealed batch retained", p.tail.heldSpans, p.tail.retained)
	}
}

// Only keeps are remembered, the last decision_cache of them: a span arriving after its
// trace was kept is kept while the keep is remembered, and held afresh after (or with
// decision_cache 0).
func TestTailDecisionMemory(t *testing.T) {
	for _, n := range []int{0, 2} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cfg := tailCfg(10)
			cfg.Tail.DecisionCache = n
			p, clk := newTail(t, cfg, nil)
			rng := rand.New(rand.NewPCG(uint64(n), 3))
			tids := []pcommon.TraceID{dropTID(t, p, rng), dropTID(t, p, rng), dropTID(t, p, rng)}
			for i, tid := range tids {
				run(t, p, tbatch(tspan{tid: tid, sid: sid(byte(i + 1)), err: true}))
			}
			run(t, p, tbatch(tspan{tid: dropTID(t, p, rng), sid: sid(8)}))
			if len(p.tail.kept.m) != n || p.tail.heldTraces != 1 {
				t.Fatalf("%d keeps remembered, %d traces held: want %d and 1", len(p.tail.kept.m), p.tail.heldTraces, n)
			}
			clk.advance(6 * time.Second)
			p.tail.sweep(context.Background())
			if len(p.tail.kept.m) != n || p.tail.heldTraces != 0 {
				t.Fatalf("after the waits: %d keeps remembered, %d traces held, want %d and 0", len(p.tail.kept.m), p.tail.heldTraces, n)
			}
			for i, tid := range tids {
				pol, ok := p.tail.kept.get(tid)
				if remembered := i >= 3-n; ok != remembered || ok && pol != tailError {
					t.Fatalf("trace %d: %v %v, want remembered %v as kept by the error policy", i, pol, ok, remembered)
				}
			}
			// A late span follows a remembered keep, else is held afresh.
			got := out{}
			got.add(run(t, p, tbatch(tspan{tid: tids[0], sid: sid(9)}, tspan{tid: tids[2], sid: sid(10)})))
			wantHeld := 2
			if n == 2 {
				wantHeld = 1
				if len(got[tids[2]]) != 1 {
					t.Fatalf("late span of a remembered keep: %v, want it kept", got)
				}
			}
			if p.tail.heldTraces != wantHeld {
				t.Fatalf("late spans: %d traces held, want %d", p.tail.heldTraces, wantHeld)
			}
		})
	}
}

// A keep is not lost to an eviction later in the same batch: when the batch's own held
// spans need the room of the held batch that has the kept trace's earlier spans, those
// are cut out before it is freed.
func TestTailKeepBeforeEviction(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	cfg := tailCfg(1)
	cfg.Tail.MaxSpans = 3
	p, clk := newTail(t, cfg, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	rng := rand.New(rand.NewPCG(17, 17))
	kept := dropTID(t, p, rng)
	got := out{}
	got.add(run(t, p, tbatch(tspan{tid: kept, sid: sid(1)}, tspan{tid: kept, sid: sid(2)})))
	clk.advance(time.Second)
	got.add(run(t, p, tbatch(
		tspan{tid: kept, sid: sid(3), err: true},
		tspan{tid: dropTID(t, p, rng), sid: sid(4)},
		tspan{tid: dropTID(t, p, rng), sid: sid(5)},
	)))
	slices.Sort(got[kept])
	if want := []string{sid(1).String() + " ", sid(2).String() + " ", sid(3).String() + " "}; fmt.Sprint(got[kept]) != fmt.Sprint(want) {
		t.Fatalf("kept trace: %v, want %v", got[kept], want)
	}
	m := collect(t, reader, "mode")
	if m["spoor_sampler_tail_degraded_spans reason=max_spans"] != 0 || m["spoor_sampler_tail_degraded_traces reason=max_spans"] != 0 ||
		m["spoor_sampler_tail_spans policy=error sampled=true"] != 3 || p.tail.retained != 2 || len(p.tail.held()) != 1 {
		t.Fatalf("%v, %d retained in %d held batches: want the first batch freed with nothing degraded, the 2 new spans held", m, p.tail.retained, len(p.tail.held()))
	}
}
