package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/spoortrace/spoor/alerts"
)

// benchBatches are demo-like batches of 512 spans: traces of 4 to 20 spans across 6
// services, client/server pairs, calls to uninstrumented peers, 5% errors, 10 spans
// of each trace split over two batches, as SDKs export them.
func benchBatches(n int) []ptrace.Traces {
	rng := rand.New(rand.NewPCG(42, 43))
	var pool []spanSpec
	for len(pool) < n*512 {
		pool = append(pool, genTrace(rng, time.Now(), "")...)
	}
	var out []ptrace.Traces
	for i := range n {
		out = append(out, batchByService(pool[i*512:(i+1)*512]))
	}
	return out
}

// batchByService groups the spans by service, one resource each, as an SDK sends them.
func batchByService(specs []spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	res := map[string]ptrace.SpanSlice{}
	for _, s := range specs {
		spans, ok := res[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			rs.Resource().Attributes().PutStr("host.name", "bench")
			spans = rs.ScopeSpans().AppendEmpty().Spans()
			res[s.service] = spans
		}
		one := batch([]spanSpec{s})
		one.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(spans.AppendEmpty())
	}
	return td
}

// BenchmarkAnalytics is the analytics stage's CPU per span on the ingest path
// (ConsumeTraces: RED, service graph, metrics with exemplars, and one alert rule),
// with the real OTel metrics SDK behind it. Flushes to the store run in their own
// goroutine and are not part of it.
func BenchmarkAnalytics(b *testing.B) {
	for _, rules := range []int{0, 1, 10} {
		b.Run(fmt.Sprintf("rules=%d", rules), func(b *testing.B) {
			cfg := createDefaultConfig()
			cfg.FlushInterval = time.Hour
			for i := range rules {
				cfg.Alerts.Groups = append(cfg.Alerts.Groups, alerts.GroupConfig{Name: "g", Rules: []alerts.RuleConfig{{
					Alert: fmt.Sprintf("R%d", i), Match: alerts.MatchConfig{Service: fmt.Sprintf("svc-%d", i%5), Operation: "handle",
						Attributes: map[string]string{"payment.method": "!=paypal"}},
					Condition: "error_rate > 0.5", Window: "1m"}}})
			}
			set := processortest.NewNopSettings(Type)
			set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			proc, _, err := newTraces(context.Background(), set, cfg, &nopConsumer{})
			if err != nil {
				b.Fatal(err)
			}
			if err := proc.Start(context.Background(), nil); err != nil {
				b.Fatal(err)
			}
			defer proc.Shutdown(context.Background())
			batches := benchBatches(64)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := proc.ConsumeTraces(context.Background(), batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time of the process (GC included), which a machine shared with other
			// work inflates much less than wall time.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*512), "cpu-ns/span")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
			b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
				_ = proc.ConsumeTraces(context.Background(), batches[0])
			}))/512, "allocs/span")
		})
	}
}
