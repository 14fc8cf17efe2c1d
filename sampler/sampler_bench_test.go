package sampler

import (
	"context"
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/metric/noop"
)

// BenchmarkHeadDecision is the per-span decision alone: the figure of issue 4's target
// (under 50 ns/span, no allocation for a span with an empty tracestate).
func BenchmarkHeadDecision(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	tids := make([]pcommon.TraceID, 4096)
	for i := range tids {
		tids[i] = randTID(rng)
	}
	for _, c := range []struct {
		name string
		mode Mode
		ts   string
	}{
		{"equalizing/empty", Equalizing, ""},
		{"equalizing/th_rv_present", Equalizing, "ot=th:8;rv:f0123456789abc"},
		{"equalizing/th_above_config", Equalizing, "ot=th:f;rv:f8123456789abc"},
		{"proportional/empty", Proportional, ""},
		{"proportional/th_rv_present", Proportional, "ot=th:8;rv:f0123456789abc"},
		{"hash_seed/empty", HashSeed, ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, err := newHeadProcessor(cfgWith(c.mode, 10), noop.NewMeterProvider())
			if err != nil {
				b.Fatal(err)
			}
			var buf [512]byte
			kept := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if p.decide(tids[i&4095], c.ts, &p.def, buf[:0]).keep {
					kept++
				}
			}
			b.ReportMetric(float64(kept)/float64(b.N), "kept/span")
		})
	}
}

// BenchmarkProcessBatch is the processor over a 1,000-span batch (10 spans per trace),
// with its pdata walk, span removal and tracestate writes: ns/op divided by 1,000 is the
// cost per span in the pipeline.
func BenchmarkProcessBatch(b *testing.B) {
	for _, pct := range []float64{10, 100} {
		b.Run(map[float64]string{10: "10pct", 100: "100pct"}[pct], func(b *testing.B) {
			p, err := newHeadProcessor(cfgWith(Equalizing, pct), noop.NewMeterProvider())
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(2, 2))
			var spans []span
			for t := 0; t < 100; t++ {
				tid := randTID(rng)
				for s := 0; s < 10; s++ {
					spans = append(spans, span{service: "svc", name: "op", tid: tid, sid: randSID(rng)})
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				td := batch(spans...) // the processor drops spans in place: a fresh batch each time
				b.StartTimer()
				if _, err := p.processTraces(context.Background(), td); err != nil && td.SpanCount() != 0 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/span")
		})
	}
}
