package sampler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
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
//
// 10pct_rates has a per-operation rate configured, so each batch gives each of its
// traces one rate and remembers it (trace_rate_cache): the cost of keeping traces whole
// under per-service and per-operation rates. 10pct_tracestate's spans come with their
// trace's rv and an SDK's th, so every kept span's tracestate is rewritten.
func BenchmarkProcessBatch(b *testing.B) {
	for _, c := range []struct {
		name   string
		pct    float64
		rates  bool
		traced bool
	}{{"10pct", 10, false, false}, {"10pct_rates", 10, true, false}, {"10pct_tracestate", 10, false, true}, {"100pct", 100, false, false}} {
		pct := c.pct
		b.Run(c.name, func(b *testing.B) {
			cfg := cfgWith(Equalizing, pct)
			if c.rates {
				cfg.Services = []ServiceConfig{{Name: "svc", Operations: []OperationConfig{{Name: "GET /healthz", Percentage: 1}}}}
			}
			p, err := newHeadProcessor(cfg, noop.NewMeterProvider())
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(2, 2))
			var spans []span
			for t := 0; t < 100; t++ {
				tid := randTID(rng)
				ts := ""
				if c.traced {
					ts = fmt.Sprintf("ot=th:8;rv:%014x,vendor=x", TraceIDRandomness(tid))
				}
				for s := 0; s < 10; s++ {
					spans = append(spans, span{service: "svc", name: "op", tid: tid, sid: randSID(rng), ts: ts})
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				td := batch(spans...) // the processor drops spans in place: a fresh batch each time
				if c.rates {
					uniqueTraceIDs(td, i) // new traces each time, as in production
				}
				b.StartTimer()
				if _, err := p.processTraces(context.Background(), td); err != nil && td.SpanCount() != 0 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/span")
		})
	}
}

// BenchmarkSpanPriority is the sampling.priority lookup every span pays: a span with six
// attributes without it (the common case), and with it.
func BenchmarkSpanPriority(b *testing.B) {
	for _, with := range []bool{false, true} {
		b.Run(map[bool]string{false: "absent", true: "present"}[with], func(b *testing.B) {
			sp := ptrace.NewSpan()
			a := sp.Attributes()
			a.PutStr("http.request.method", "GET")
			a.PutStr("http.route", "/api/orders/{id}")
			a.PutInt("http.response.status_code", 200)
			a.PutStr("server.address", "checkout.internal")
			a.PutStr("url.path", "/api/orders/1")
			a.PutStr("network.protocol.version", "1.1")
			if with {
				a.PutInt(samplingPriorityKey, 1)
			}
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				if spanPriority(sp) != priorityDefer {
					n++
				}
			}
			if with != (n > 0) {
				b.Fatalf("priority found %d times", n)
			}
		})
	}
}
