package sampler

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/probabilisticsamplerprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// million is the trace count of the statistical and agreement tests; the race detector
// slows pdata so much that it runs a tenth.
func million() int {
	if raceEnabled || testing.Short() {
		return 100_000
	}
	return 1_000_000
}

func newProc(t testing.TB, cfg *Config) *headProcessor {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	p, err := newHeadProcessor(cfg, noop.NewMeterProvider())
	if err != nil {
		t.Fatalf("new processor: %v", err)
	}
	return p
}

func cfgWith(mode Mode, pct float64) *Config {
	c := createDefaultConfig()
	c.Mode, c.SamplingPercentage = mode, pct
	return c
}

// span is one span of a test batch.
type span struct {
	service, name string
	tid           pcommon.TraceID
	sid, parent   pcommon.SpanID
	ts            string
}

func batch(spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, s := range spans {
		ss, ok := bySvc[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			bySvc[s.service] = ss
		}
		sp := ss.AppendEmpty()
		sp.SetName(s.name)
		sp.SetTraceID(s.tid)
		sp.SetSpanID(s.sid)
		sp.SetParentSpanID(s.parent)
		sp.TraceState().FromRaw(s.ts)
	}
	return td
}

// kept lists the spans left in td as "spanID tracestate".
func kept(td ptrace.Traces) []string {
	var out []string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				out = append(out, sp.SpanID().String()+" "+sp.TraceState().AsRaw())
			}
		}
	}
	return out
}

func run(t testing.TB, p *headProcessor, td ptrace.Traces) ptrace.Traces {
	t.Helper()
	out, err := p.processTraces(context.Background(), td)
	if err != nil && out.SpanCount() != 0 {
		t.Fatalf("process: %v", err)
	}
	if err != nil {
		return ptrace.NewTraces()
	}
	return out
}

func randTID(rng *rand.Rand) (tid pcommon.TraceID) {
	for i := range tid {
		tid[i] = byte(rng.Uint32())
	}
	return tid
}

func randSID(rng *rand.Rand) (sid pcommon.SpanID) {
	for i := range sid {
		sid[i] = byte(rng.Uint32())
	}
	sid[0] |= 1
	return sid
}

func sid(n byte) pcommon.SpanID { return pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, n} }

// Two processors built separately, as on two nodes, agree on every trace.
func TestTwoInstancesAgree(t *testing.T) {
	for _, mode := range []Mode{Equalizing, Proportional, HashSeed} {
		t.Run(string(mode), func(t *testing.T) {
			a, b := newProc(t, cfgWith(mode, 10)), newProc(t, cfgWith(mode, 10))
			rng := rand.New(rand.NewPCG(7, uint64(len(mode))))
			const per = 10_000
			total, keptN := 0, 0
			for total < million() {
				spans := make([]span, per)
				for i := range spans {
					spans[i] = span{service: "svc", name: "op", tid: randTID(rng), sid: randSID(rng)}
				}
				ka, kb := kept(run(t, a, batch(spans...))), kept(run(t, b, batch(spans...)))
				if fmt.Sprint(ka) != fmt.Sprint(kb) {
					t.Fatalf("instances disagree after %d traces", total)
				}
				total += per
				keptN += len(ka)
			}
			if keptN == 0 || keptN == total {
				t.Fatalf("kept %d of %d: the test decided nothing", keptN, total)
			}
		})
	}
}

// The kept fraction is within 4 standard deviations of p.
func TestKeptFraction(t *testing.T) {
	n := million()
	for _, mode := range []Mode{Equalizing, Proportional, HashSeed} {
		for _, p := range []float64{0.001, 0.01, 0.1, 0.25, 0.5, 0.9, 1} {
			if mode == HashSeed && p == 0.001 {
				continue // checked below against hash_seed's truncated bucket count
			}
			pr := newProc(t, cfgWith(mode, p*100))
			rng := rand.New(rand.NewPCG(uint64(p*1e6), 3))
			keptN := 0
			var buf [512]byte
			for i := 0; i < n; i++ {
				if pr.decide(randTID(rng), "", &pr.def, buf[:0]).keep {
					keptN++
				}
			}
			want := float64(n) * p
			sd := math.Sqrt(float64(n) * p * (1 - p))
			if math.Abs(float64(keptN)-want) > 4*sd+0.5 {
				t.Errorf("%s p=%v: kept %d of %d, want %.0f ± %.0f", mode, p, keptN, n, want, 4*sd)
			}
		}
	}
	// hash_seed at 0.1% keeps 16 of 16384 buckets (contrib truncates 16.384): check
	// against that rate rather than the nominal one.
	pr := newProc(t, cfgWith(HashSeed, 0.1))
	rng := rand.New(rand.NewPCG(11, 3))
	keptN := 0
	for i := 0; i < n; i++ {
		if pr.decide(randTID(rng), "", &pr.def, nil).keep {
			keptN++
		}
	}
	p := 16.0 / 16384
	if want, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p)); math.Abs(float64(keptN)-want) > 4*sd {
		t.Errorf("hash_seed 0.1%%: kept %d of %d, want %.0f ± %.0f", keptN, n, want, 4*sd)
	}
}

// hash_seed equals contrib's probabilisticsamplerprocessor v0.162.0, run through its own
// factory: same spans kept, same tracestate written, fail_closed drops included.
func TestHashSeedEqualsContrib(t *testing.T) {
	n := million()
	ctx := context.Background()
	cases := []struct {
		seed uint32
		pct  float32
	}{{0, 25}, {22, 25}, {1, 10}, {12345, 1}, {7, 33.3}, {99, 100}, {3, 0.5}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("seed%d_%v%%", c.seed, c.pct), func(t *testing.T) {
			cf := probabilisticsamplerprocessor.NewFactory()
			ccfg := cf.CreateDefaultConfig().(*probabilisticsamplerprocessor.Config)
			ccfg.Mode, ccfg.HashSeed, ccfg.SamplingPercentage = "hash_seed", c.seed, c.pct
			sink := new(consumertest.TracesSink)
			contrib, err := cf.CreateTraces(ctx, processortest.NewNopSettings(cf.Type()), ccfg, sink)
			if err != nil {
				t.Fatalf("contrib processor: %v", err)
			}
			ours := newFactoryProc(t, HashSeed, float64(c.pct), c.seed)
			oursSink := new(consumertest.TracesSink)
			oursProc, err := NewFactory().CreateTraces(ctx, processortest.NewNopSettings(Type), ours, oursSink)
			if err != nil {
				t.Fatalf("spoor processor: %v", err)
			}
			if err := contrib.Start(ctx, componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			if err := oursProc.Start(ctx, componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(c.seed), 5))
			// Mostly empty tracestates; some with another vendor's entry, an ot
			// sub-key of someone else's, an rv or a th (refused, fail_closed).
			states := []string{"", "", "", "", "", "", "vendor=x", "ot=xx:yy", "ot=rv:0123456789abcd", "a=1,ot=th:8,b=2"}
			const per = 10_000
			for done := 0; done < n; done += per {
				spans := make([]span, per)
				for i := range spans {
					spans[i] = span{service: "s", name: "op", tid: randTID(rng), sid: randSID(rng), ts: states[rng.IntN(len(states))]}
				}
				if err := contrib.ConsumeTraces(ctx, batch(spans...)); err != nil {
					t.Fatal(err)
				}
				if err := oursProc.ConsumeTraces(ctx, batch(spans...)); err != nil {
					t.Fatal(err)
				}
			}
			var want, got []string
			for _, td := range sink.AllTraces() {
				want = append(want, kept(td)...)
			}
			for _, td := range oursSink.AllTraces() {
				got = append(got, kept(td)...)
			}
			if len(want) != len(got) {
				t.Fatalf("kept %d spans, contrib %d", len(got), len(want))
			}
			for i := range want {
				if want[i] != got[i] {
					t.Fatalf("span %d: %q, contrib %q", i, got[i], want[i])
				}
			}
			if len(want) == 0 {
				t.Fatal("contrib kept nothing: the comparison proves nothing")
			}
		})
	}
}

func newFactoryProc(t *testing.T, mode Mode, pct float64, seed uint32) *Config {
	t.Helper()
	c := NewFactory().CreateDefaultConfig().(*Config)
	c.Mode, c.SamplingPercentage, c.HashSeed = mode, pct, seed
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// A proportional stage behind an upstream sampler at p1 keeps about p1·p2 of the
// original traces and writes th of p1·p2.
func TestProportionalAfterUpstream(t *testing.T) {
	n := million()
	for _, c := range []struct{ p1, p2 float64 }{{0.5, 0.25}, {0.1, 0.5}, {0.25, 0.1}} {
		up := newProc(t, cfgWith(Equalizing, c.p1*100))
		down := newProc(t, cfgWith(Proportional, c.p2*100))
		p1eff := ThresholdProbability(up.def.t)
		wantT, err := sampling.ProbabilityToThresholdWithPrecision(p1eff*c.p2, DefaultPrecision)
		if err != nil {
			t.Fatal(err)
		}
		wantTS := "ot=th:" + wantT.TValue()
		rng := rand.New(rand.NewPCG(uint64(c.p1*100), uint64(c.p2*100)))
		keptN := 0
		var buf [512]byte
		for i := 0; i < n; i++ {
			tid := randTID(rng)
			d1 := up.decide(tid, "", &up.def, buf[:0])
			if !d1.keep {
				continue
			}
			d2 := down.decide(tid, d1.ts, &down.def, buf[:0])
			if !d2.keep {
				continue
			}
			keptN++
			if d2.ts != wantTS {
				t.Fatalf("p1=%v p2=%v: tracestate %q, want %q", c.p1, c.p2, d2.ts, wantTS)
			}
		}
		p := c.p1 * c.p2
		if want, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p)); math.Abs(float64(keptN)-want) > 4*sd {
			t.Errorf("p1=%v p2=%v: kept %d of %d, want %.0f ± %.0f", c.p1, c.p2, keptN, n, want, 4*sd)
		}
	}
}

// Deterministic cases: upstream th respected by equalizing, inconsistent th erased,
// rv carried unchanged and used, other entries and sub-keys kept, 100% passes through.
func TestTraceStateHandling(t *testing.T) {
	low := mustTraceID(t, "0000000000000000ff00000000000000")  // R = 0
	high := mustTraceID(t, "0000000000000000fff0000000000000") // R = f0000000000000
	mid := mustTraceID(t, "00000000000000000090000000000000")  // R = 90000000000000
	for _, c := range []struct {
		name   string
		mode   Mode
		pct    float64
		tid    pcommon.TraceID
		ts     string
		keep   bool
		wantTS string
	}{
		{"equalizing writes th", Equalizing, 10, high, "", true, "ot=th:e666"},
		{"equalizing drops below T", Equalizing, 10, mid, "", false, ""},
		{"upstream th above config is kept as is", Equalizing, 50, high, "ot=th:c", true, "ot=th:c"},
		{"upstream th below config is raised", Equalizing, 25, high, "ot=th:8", true, "ot=th:c"},
		{"raised th drops", Equalizing, 25, mid, "ot=th:8", false, ""},
		{"inconsistent th erased, then decided", Equalizing, 50, mid, "ot=th:c", true, "ot=th:8"},
		{"inconsistent th erased at 100%", Equalizing, 100, mid, "x=1,ot=th:c;rv:90000000000000", true, "ot=rv:90000000000000,x=1"},
		{"unreadable th erased", Equalizing, 100, mid, "ot=th:123456789abcdef", true, ""},
		{"rv decides, not the trace ID", Equalizing, 10, low, "ot=rv:f0000000000000", true, "ot=rv:f0000000000000;th:e666"},
		{"rv low drops though the trace ID is high", Equalizing, 10, high, "ot=rv:00000000000001", false, ""},
		{"other vendors and ot sub-keys kept, ot moves first", Equalizing, 10, low,
			"vendor=abc, ot=xx:yy;rv:f0000000000000;zz:1 ,other=1", true, "ot=rv:f0000000000000;th:e666;xx:yy;zz:1,vendor=abc,other=1"},
		{"100% leaves no th", Equalizing, 100, low, "", true, ""},
		{"100% leaves others untouched", Equalizing, 100, low, "vendor=a , ot=th:8;rv:ffffffffffffff", true, "vendor=a , ot=th:8;rv:ffffffffffffff"},
		{"0% keeps nothing", Equalizing, 0, high, "", false, ""},
		{"proportional without th", Proportional, 25, high, "", true, "ot=th:c"},
		{"proportional multiplies", Proportional, 50, high, "ot=th:8", true, "ot=th:c"},
		{"proportional at 100% passes through", Proportional, 100, high, "ot=th:8", true, "ot=th:8"},
		{"hash_seed refuses rv", HashSeed, 100, high, "ot=rv:f0000000000000", false, ""},
		{"hash_seed refuses th", HashSeed, 100, high, "ot=th:0", false, ""},
		{"hash_seed writes rv and th at 100%", HashSeed, 100, mustTraceID(t, "4bf92f3577b34da6a3ce929d0e0e4736"), "", true, "ot=rv:fdc80d0b42008d;th:0"},
		{"hash_seed worked example", HashSeed, 25, mustTraceID(t, "4bf92f3577b34da6a3ce929d0e0e4736"), "", true, "ot=rv:fdc80d0b42008d;th:c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newProc(t, cfgWith(c.mode, c.pct))
			out := kept(run(t, p, batch(span{service: "s", name: "op", tid: c.tid, sid: sid(1), ts: c.ts})))
			if !c.keep {
				if len(out) != 0 {
					t.Fatalf("kept %v, want a drop", out)
				}
				return
			}
			if len(out) != 1 || out[0] != sid(1).String()+" "+c.wantTS {
				t.Fatalf("got %q, want kept with tracestate %q", out, c.wantTS)
			}
		})
	}
}

// A trace whose spans arrive over several batches gets one decision: with one rate the
// decision depends only on trace ID, rv and th.
func TestTraceSplitOverBatches(t *testing.T) {
	p := newProc(t, cfgWith(Equalizing, 30))
	rng := rand.New(rand.NewPCG(9, 9))
	const traces, spansPer, batches = 2000, 6, 3
	all := make([][]span, batches)
	for i := 0; i < traces; i++ {
		tid := randTID(rng)
		root := randSID(rng)
		for j := 0; j < spansPer; j++ {
			s := span{service: fmt.Sprintf("svc%d", j%3), name: fmt.Sprintf("op%d", j), tid: tid, sid: randSID(rng), parent: root}
			if j == 0 {
				s.sid, s.parent = root, pcommon.SpanID{}
			}
			b := rng.IntN(batches)
			all[b] = append(all[b], s)
		}
	}
	keptPerTrace := map[pcommon.TraceID]int{}
	for _, b := range all {
		out := run(t, p, batch(b...))
		rss := out.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			spans := rss.At(i).ScopeSpans().At(0).Spans()
			for k := 0; k < spans.Len(); k++ {
				keptPerTrace[spans.At(k).TraceID()]++
			}
		}
	}
	for tid, n := range keptPerTrace {
		if n != spansPer {
			t.Fatalf("trace %s: %d of %d spans kept", tid, n, spansPer)
		}
	}
	if len(keptPerTrace) == 0 || len(keptPerTrace) == traces {
		t.Fatalf("kept %d of %d traces: nothing was decided", len(keptPerTrace), traces)
	}
}

// Per-service and per-operation rates: the root span's rate decides for every span of
// its trace in the same batch, and, remembered, for its spans in later batches. Without
// the memory (trace_rate_cache: 0), a batch without the root decides its spans of the
// trace at the rate of the first of them, whole within the batch.
func TestServiceAndOperationRates(t *testing.T) {
	cfg := cfgWith(Equalizing, 50)
	hundred, one := 100.0, 1.0
	cfg.Services = []ServiceConfig{
		{Name: "gateway", Percentage: &hundred, Operations: []OperationConfig{{Name: "GET /healthz", Percentage: 1}}},
		{Name: "payments", Percentage: &one},
	}
	p := newProc(t, cfg)
	noMemory := *cfg
	noMemory.TraceRateCache = 0
	p0 := newProc(t, &noMemory)
	rng := rand.New(rand.NewPCG(4, 4))
	n := million() / 10
	var healthKept, checkoutKept, orphansKept int
	for i := 0; i < n; i++ {
		tid := randTID(rng)
		// One batch per trace, root present: the whole trace follows the root's rate.
		op := "POST /checkout"
		if i%2 == 1 {
			op = "GET /healthz"
		}
		out := kept(run(t, p, batch(
			span{service: "gateway", name: op, tid: tid, sid: sid(1)},
			span{service: "payments", name: "charge", tid: tid, sid: sid(2), parent: sid(1)},
			span{service: "ledger", name: "write", tid: tid, sid: sid(3), parent: sid(2)},
		)))
		switch {
		case len(out) == 0:
		case len(out) != 3:
			t.Fatalf("trace %s (%s): %d of 3 spans kept, want the root's decision for all", tid, op, len(out))
		case op == "GET /healthz":
			healthKept++
		default:
			checkoutKept++
		}
		// More spans later, root elsewhere: they follow the root's rate, remembered.
		orphans := func() []span {
			return []span{
				{service: "payments", name: "charge", tid: tid, sid: sid(4), parent: sid(1)},
				{service: "ledger", name: "write", tid: tid, sid: sid(5), parent: sid(4)},
			}
		}
		later := kept(run(t, p, batch(orphans()...)))
		if (len(out) == 3) != (len(later) == 2) || (len(later) != 0 && len(later) != 2) {
			t.Fatalf("trace %s (%s): %d of 3 spans kept, then %d of 2: the later batch does not follow the root's rate", tid, op, len(out), len(later))
		}
		// Without the memory: payments' rate (1%), its first span's, for both.
		switch alone := kept(run(t, p0, batch(orphans()...))); len(alone) {
		case 0:
		case 2:
			orphansKept++
		default:
			t.Fatalf("trace %s: %v kept of a batch of two spans of one trace", tid, alone)
		}
	}
	if checkoutKept != n/2 {
		t.Errorf("gateway at 100%%: kept %d of %d checkout traces", checkoutKept, n/2)
	}
	for _, c := range []struct {
		what string
		got  int
		n    int
		p    float64
	}{{"healthz traces (1%)", healthKept, n / 2, 0.01}, {"root-less batches, first span payments (1%)", orphansKept, n, 0.01}} {
		want, sd := float64(c.n)*c.p, math.Sqrt(float64(c.n)*c.p*(1-c.p))
		if math.Abs(float64(c.got)-want) > 4*sd {
			t.Errorf("%s: %d of %d, want %.0f ± %.0f", c.what, c.got, c.n, want, 4*sd)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	neg := -1.0
	for _, c := range []func(*Config){
		func(c *Config) { c.Mode = "random" },
		func(c *Config) { c.SamplingPercentage = 101 },
		func(c *Config) { c.SamplingPercentage = math.NaN() },
		func(c *Config) { c.SamplingPrecision = 0 },
		func(c *Config) { c.TraceRateCache = -1 },
		func(c *Config) { c.Services = []ServiceConfig{{Name: ""}} },
		func(c *Config) { c.Services = []ServiceConfig{{Name: "a"}, {Name: "a"}} },
		func(c *Config) { c.Services = []ServiceConfig{{Name: "a", Percentage: &neg}} },
		func(c *Config) {
			c.Services = []ServiceConfig{{Name: "a", Operations: []OperationConfig{{Name: "x", Percentage: 200}}}}
		},
	} {
		cfg := createDefaultConfig()
		c(cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("config %+v validated", cfg)
		}
	}
	if err := createDefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}

// The counters say how many spans and traces were kept and dropped, by mode and policy.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p, err := newHeadProcessor(cfgWith(Equalizing, 50), mp)
	if err != nil {
		t.Fatal(err)
	}
	high := mustTraceID(t, "0000000000000000fff0000000000000")
	mid := mustTraceID(t, "00000000000000000010000000000000")
	run(t, p, batch(
		span{service: "s", tid: high, sid: sid(1)},
		span{service: "s", tid: high, sid: sid(2), parent: sid(1)},
		span{service: "s", tid: mid, sid: sid(3)},
		span{service: "s", tid: mid, sid: sid(4), parent: sid(3), ts: "ot=rv:ffffffffffffff;th:f"},
	))
	got := collect(t, reader)
	want := map[string]int64{
		"spoor_sampler_spans mode=equalizing policy=trace_id_w3c sampled=true":        2,
		"spoor_sampler_spans mode=equalizing policy=trace_id_w3c sampled=false":       1,
		"spoor_sampler_spans mode=equalizing policy=sampling_randomness sampled=true": 1,
		"spoor_sampler_traces mode=equalizing policy=trace_id_w3c sampled=true":       1,
		"spoor_sampler_traces mode=equalizing policy=trace_id_w3c sampled=false":      1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

var _ processor.Factory = NewFactory()
