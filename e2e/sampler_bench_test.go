package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/spoortrace/spoor/internal/benchdata"
)

// samplerBenchSpans is what each run of BenchmarkSamplerShareOfCPU offers: enough for
// the tail buffer (100,000 spans by default) to spend most of the run full.
const samplerBenchSpans = 600 * 1024

// BenchmarkSamplerShareOfCPU is issue 4's end-to-end target, "the sampler adds under 5%
// to Spoor's CPU per span at 10% sampling". It runs bin/spoor at
// SPOOR_SAMPLING_PERCENTAGE=10 in three configurations, interleaved (sampler, head-only,
// pass-through, then again in the next order) so that the noise of a shared machine
// falls on all three, and offers each run the same spans: 600 Ki spans in 512-span
// OTLP/HTTP requests shaped as make bench's (telemetrygen's: one service, traces of a
// root and four children, 12 attributes per span, no errors), with the same trace IDs.
// CPU is the process' (every thread, the GC included, from /proc) from the first
// request to 3 s after the last, per million received spans.
//
//   - sampler: the default config: head sampling and the tail stage (errors policy).
//   - head-only: the same with tail.enabled false. With no error in the load the tail
//     keeps nothing, so both store exactly the same spans: the difference is what the
//     tail stage costs (holding 90% of the spans, the GC work on them, the sweeps).
//   - pass-through: spoor_sampler out of the pipeline, so everything is stored: what
//     10% sampling saves, for scale.
//
// Every run writes a CPU profile (the pprof extension's save_to_file, in every
// configuration alike), and the sampler's own functions — processTraces, which
// holds the tail work, and the tail sweeps — are summed from it (go tool pprof).
// %-added is the sampler's cost over an ideal sampler that dropped the same spans for
// free: (sampler − (head-only − head's own CPU)) / (head-only − head's own CPU), from
// the sums of all rounds; %-added-median is the median of each round's.
// Profiles are kept in $SPOOR_BENCH_PROFILE_DIR when it is set.
func BenchmarkSamplerShareOfCPU(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Fatal("reads process CPU time from /proc")
	}
	variant := func(name string, edits ...string) string {
		// A CPU profile from start to shutdown, in every variant alike.
		return defaultConfigVariant(b, name, append(edits,
			"\nextensions:\n", "\nextensions:\n  pprof:\n    endpoint: 127.0.0.1:0\n    save_to_file: ${env:SPOOR_BENCH_PROFILE}\n",
			"\n  extensions: [", "\n  extensions: [pprof, ")...)
	}
	const pipeline = "processors: [spoor_ingest, spoor_analytics, spoor_sampler]"
	variants := []struct{ name, config string }{
		{"sampler", variant("sampler")},
		{"head-only", variant("head-only", "    tail:\n      enabled: true\n", "    tail:\n      enabled: false\n")},
		{"pass-through", variant("pass-through", pipeline, "processors: [spoor_ingest, spoor_analytics]")},
	}
	profDir := os.Getenv("SPOOR_BENCH_PROFILE_DIR")
	if profDir == "" {
		profDir = b.TempDir()
	}
	var cpu, own [3]time.Duration
	var added []float64 // per round
	for i := 0; i < b.N; i++ {
		var rc, ro [3]time.Duration
		for j := range variants {
			v := (i + j) % len(variants) // rotate the order from one round to the next
			prof := filepath.Join(profDir, fmt.Sprintf("%s-%d.prof", variants[v].name, i))
			c := runAndMeasure(b, []string{"--config", "file:" + variants[v].config},
				[]string{"SPOOR_SAMPLING_PERCENTAGE=10", "SPOOR_BENCH_PROFILE=" + prof}, offerTelemetrygenShaped(samplerBenchSpans))
			o := samplerCPU(b, prof)
			b.Logf("round %d %-12s %5.2f cpu-s/Mspan, sampler functions %4.1f%%", i, variants[v].name,
				c.Seconds()/samplerBenchSpans*1e6, 100*o.Seconds()/c.Seconds())
			cpu[v] += c
			own[v] += o
			rc[v], ro[v] = c, o
		}
		ideal := rc[1] - ro[1]
		added = append(added, 100*float64(rc[0]-ideal)/float64(ideal))
	}
	perM := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) / samplerBenchSpans * 1e6 }
	s, h, p := perM(cpu[0]), perM(cpu[1]), perM(cpu[2])
	sOwn, hOwn := perM(own[0]), perM(own[1])
	b.ReportMetric(s, "cpu-s/Mspan-sampler")
	b.ReportMetric(h, "cpu-s/Mspan-head-only")
	b.ReportMetric(p, "cpu-s/Mspan-pass-through")
	b.ReportMetric(100*sOwn/s, "%-sampler-funcs")
	b.ReportMetric(100*hOwn/h, "%-head-funcs")
	b.ReportMetric(100*(s-h)/h, "%-tail-added")
	b.ReportMetric(100*(s-(h-hOwn))/(h-hOwn), "%-added")
	// The same per round, the median: a round the machine's noise hit (one variant's
	// run measured 20% off) moves the sums, not the median.
	slices.Sort(added)
	b.ReportMetric(added[len(added)/2], "%-added-median")
	b.ReportMetric(s/p, "sampler/pass-through")
}

// samplerCPU is the CPU time a profile counts in the sampler's own functions: the
// processor (its tail work included) and the tail stage's sweeps.
func samplerCPU(tb testing.TB, prof string) time.Duration {
	tb.Helper()
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-unit=ms", "-nodecount=1000000", prof).CombinedOutput()
	if err != nil {
		tb.Fatalf("go tool pprof %s: %v\n%s", prof, err, out)
	}
	var total time.Duration
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 {
			continue
		}
		switch f[5] {
		case "github.com/spoortrace/spoor/sampler.(*headProcessor).processTraces",
			"github.com/spoortrace/spoor/sampler.(*tailStage).sweep":
			ms, err := strconv.ParseFloat(strings.TrimSuffix(f[3], "ms"), 64)
			if err != nil {
				tb.Fatalf("pprof line %q: %v", line, err)
			}
			total += time.Duration(ms * float64(time.Millisecond))
		}
	}
	return total
}

// offerTelemetrygenShaped is a load of n spans (a multiple of 512) in 512-span requests
// shaped as make bench's replayer sends them, from two senders; request i carries the
// same trace IDs in every run, so every configuration gets the same head decisions.
func offerTelemetrygenShaped(n int) func(tb testing.TB, otlpHTTP string) {
	const batch, perTrace = 512, 5
	return func(tb testing.TB, otlpHTTP string) {
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				td := benchdata.TelemetrygenShaped(batch, perTrace)
				spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
				for i := w; i < n/batch; i += 2 {
					benchdata.Refresh(spans, perTrace, rand.New(rand.NewPCG(uint64(i), 7)), time.Now())
					body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
					if err != nil {
						tb.Error(err)
						return
					}
					if !postTraces(tb, otlpHTTP, body) {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}
