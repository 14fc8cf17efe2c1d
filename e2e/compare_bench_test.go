package e2e

import (
	"os"
	"slices"
	"testing"
	"time"
)

// BenchmarkCompareBuilds runs the spoor of this tree and a baseline build
// ($SPOOR_BENCH_BASE_BIN; make bench-compare BASE=<git ref> builds it) side by side,
// each with its own senders, on the same telemetrygen-shaped OTLP/HTTP load in the
// default config (everything stored), and reports this tree's CPU per span as a
// ratio of the baseline's. Running both at once puts the shared machine's noise on
// both: two runs of one build read 0.998–1.008 of each other, where runs one after the
// other swing by ±10%. So changes of a percent or two show, which no absolute figure
// here can.
func BenchmarkCompareBuilds(b *testing.B) {
	base := os.Getenv("SPOOR_BENCH_BASE_BIN")
	if base == "" {
		b.Fatal("SPOOR_BENCH_BASE_BIN is not set: run make bench-compare BASE=<git ref>")
	}
	const warmup, measured = 300 * 512, 2400 * 512
	bins := [2]string{spoorBin, base}
	var total [2]time.Duration
	var ratios []float64
	for i := 0; i < b.N; i++ {
		cpu := sideBySide(func(v int) time.Duration {
			return runBinaryAndMeasureSteady(b, bins[v], nil, nil,
				offerTelemetrygenShaped(0, warmup), offerTelemetrygenShaped(warmup, measured), 3*time.Second)
		})
		if b.Failed() {
			return
		}
		perM := func(d time.Duration) float64 { return d.Seconds() / measured * 1e6 }
		r := cpu[0].Seconds() / cpu[1].Seconds()
		b.Logf("round %d: this tree %.2f, baseline %.2f cpu-s/Mspan: %.3f", i, perM(cpu[0]), perM(cpu[1]), r)
		ratios = append(ratios, r)
		total[0] += cpu[0]
		total[1] += cpu[1]
	}
	slices.Sort(ratios)
	b.ReportMetric(total[0].Seconds()/total[1].Seconds(), "cpu-ratio")
	b.ReportMetric(ratios[0], "cpu-ratio-min")
	b.ReportMetric(ratios[len(ratios)-1], "cpu-ratio-max")
}
