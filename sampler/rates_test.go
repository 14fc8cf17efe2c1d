package sampler

import (
	"math"
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// With per-service and per-operation rates, a trace whose spans arrive in separate
// batches, with different services and operations and the root in any of them (often the
// last, as SDKs export children first), is kept or dropped whole, and every kept span
// carries the same th: the threshold that decided the trace. The trace's rate is its
// root's when the root is in the first batch that carries the trace, else that batch's
// first span's; the kept fractions follow those rates.
func TestRatesTraceWholeAcrossBatches(t *testing.T) {
	cfg := cfgWith(Equalizing, 50)
	hundred, five, twenty := 100.0, 5.0, 20.0
	cfg.Services = []ServiceConfig{
		{Name: "gateway", Percentage: &hundred, Operations: []OperationConfig{{Name: "GET /healthz", Percentage: 1}}},
		{Name: "payments", Percentage: &five},
		{Name: "ledger", Percentage: &twenty},
	}
	p := newProc(t, cfg)
	rng := rand.New(rand.NewPCG(31, 31))
	n := million() / 20
	type member struct {
		s     span
		batch int
	}
	var batches [3][]span
	// deciding is the rate each trace should be decided by, as a probability.
	deciding := map[pcommon.TraceID]float64{}
	rateOfSpan := map[string]float64{"gateway/POST /checkout": 1, "gateway/GET /healthz": 0.01, "payments/charge": 0.05, "ledger/write": 0.2}
	flush := func(got map[pcommon.TraceID][]string) {
		for i := range batches {
			// Resources in a fixed order (batch groups spans by service in the order
			// it first sees them), so that "first span" is well defined: three
			// one-span traces, not checked, lead each batch.
			lead := []span{
				{service: "gateway", name: "lead", tid: randTID(rng), sid: sid(9)},
				{service: "payments", name: "lead", tid: randTID(rng), sid: sid(9)},
				{service: "ledger", name: "lead", tid: randTID(rng), sid: sid(9)},
			}
			td := run(t, p, batch(append(lead, batches[i]...)...))
			rss := td.ResourceSpans()
			for a := 0; a < rss.Len(); a++ {
				spans := rss.At(a).ScopeSpans().At(0).Spans()
				for k := 0; k < spans.Len(); k++ {
					sp := spans.At(k)
					got[sp.TraceID()] = append(got[sp.TraceID()], sp.TraceState().AsRaw())
				}
			}
			batches[i] = batches[i][:0]
		}
	}
	got := map[pcommon.TraceID][]string{}
	spansOf := map[pcommon.TraceID]int{}
	for i := 0; i < n; i++ {
		tid := randTID(rng)
		op := "POST /checkout"
		if i%2 == 1 {
			op = "GET /healthz"
		}
		ms := []member{
			{span{service: "gateway", name: op, tid: tid, sid: sid(1)}, rng.IntN(3)},
			{span{service: "payments", name: "charge", tid: tid, sid: sid(2), parent: sid(1)}, rng.IntN(3)},
			{span{service: "ledger", name: "write", tid: tid, sid: sid(3), parent: sid(2)}, rng.IntN(3)},
		}
		first := 3
		for _, m := range ms {
			first = min(first, m.batch)
		}
		// The first batch's root, else its first span (batch order: gateway, payments, ledger).
		for _, m := range ms {
			if m.batch == first {
				key := m.s.service + "/" + m.s.name
				if _, ok := deciding[tid]; !ok || m.s.parent.IsEmpty() {
					deciding[tid] = rateOfSpan[key]
				}
			}
		}
		for _, m := range ms {
			batches[m.batch] = append(batches[m.batch], m.s)
		}
		spansOf[tid] = len(ms)
		if len(batches[0]) > 3000 {
			flush(got)
		}
	}
	flush(got)
	keptBy := map[float64]int{}
	total := map[float64]int{}
	for tid, p := range deciding {
		total[p]++
		states, ok := got[tid]
		if !ok {
			continue
		}
		if len(states) != spansOf[tid] {
			t.Fatalf("trace %s: %d of %d spans kept (%v): broken", tid, len(states), spansOf[tid], states)
		}
		for _, s := range states[1:] {
			if s != states[0] {
				t.Fatalf("trace %s: spans kept with different tracestates %v", tid, states)
			}
		}
		wantT, _ := ProbabilityToThreshold(p, DefaultPrecision)
		if want := map[bool]string{true: "", false: "ot=th:" + string(AppendTValue(nil, wantT))}[p == 1]; states[0] != want {
			t.Fatalf("trace %s decided at %v: tracestate %q, want %q", tid, p, states[0], want)
		}
		keptBy[p]++
	}
	for p, tot := range total {
		want, sd := float64(tot)*p, math.Sqrt(float64(tot)*p*(1-p))
		if math.Abs(float64(keptBy[p])-want) > 4*sd+0.5 {
			t.Errorf("traces decided at %v: kept %d of %d, want %.0f ± %.0f", p, keptBy[p], tot, want, 4*sd)
		}
	}
	if len(total) != 4 {
		t.Fatalf("rates that decided: %v, want all four", total)
	}
}

// The memory of trace rates never holds more than trace_rate_cache traces.
func TestRatesCacheBounded(t *testing.T) {
	cfg := cfgWith(Equalizing, 50)
	cfg.Services = []ServiceConfig{{Name: "payments", Operations: []OperationConfig{{Name: "charge", Percentage: 1}}}}
	cfg.TraceRateCache = 100
	p := newProc(t, cfg)
	rng := rand.New(rand.NewPCG(32, 32))
	for b := 0; b < 50; b++ {
		var spans []span
		for i := 0; i < 30; i++ {
			spans = append(spans, span{service: "payments", name: "charge", tid: randTID(rng), sid: sid(1)})
		}
		run(t, p, batch(spans...))
		if n := len(p.rateCache.m); n > 100 || (b >= 4 && n != 100) {
			t.Fatalf("after batch %d: %d traces remembered, want at most and, once full, exactly 100", b, n)
		}
	}
}
