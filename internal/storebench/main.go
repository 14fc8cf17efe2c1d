// Command storebench is the store half of `make bench`: it fills a Badger trace store
// with millions of telemetrygen-shaped spans across many services and operations,
// writing from one goroutine on one core, then measures what users of the store feel —
// open time, search latency, trace-by-ID latency and bytes on disk.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/benchdata"
	"github.com/spoortrace/spoor/internal/diskusage"
	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/badgerstore"
)

func main() {
	var o options
	flag.IntVar(&o.spans, "spans", 5_000_000, "spans to write")
	flag.IntVar(&o.services, "services", 50, "services")
	flag.IntVar(&o.opsPerService, "ops-per-service", 20, "operations per service")
	flag.IntVar(&o.queries, "queries", 200, "searches per kind")
	flag.IntVar(&o.lookups, "lookups", 1000, "trace-by-ID lookups")
	flag.IntVar(&o.tgenSpans, "tgen-spans", 1_000_000, "telemetrygen-shaped spans written in the second write phase (0: skip)")
	flag.StringVar(&o.dir, "dir", "", "store directory (default: a temporary one, removed after)")
	flag.StringVar(&o.cpuprofile, "search-cpuprofile", "", "write a CPU profile of the search phase to this file")
	flag.StringVar(&o.writeProfile, "write-cpuprofile", "", "write a CPU profile of the write phase to this file")
	flag.StringVar(&o.tgenProfile, "tgen-cpuprofile", "", "write a CPU profile of the telemetrygen-shaped write phase to this file")
	flag.IntVar(&storeOptions.HeadMaxSpans, "head-max-spans", 0,
		"flush the index head at this many spans (0: the store's default). Small heads make more flushes per hour bucket, so more merge levels, as a long-running store taking many spans per second has: an hour at 50,000 spans/s is about 1,400 flushes of the default head")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

type options struct {
	spans, services, opsPerService, queries, lookups int
	tgenSpans                                        int
	dir, cpuprofile, writeProfile, tgenProfile       string
}

func run(o options) error {
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "spoor-storebench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	w := benchdata.New(o.spans, o.services, o.opsPerService, "storebench")
	fmt.Printf("spoor trace store benchmark: %d spans, %d services, %d operations, 10 attributes per span, traces of %d spans\n",
		o.spans, o.services, o.services*o.opsPerService, benchdata.SpansPerTrace)
	fmt.Printf("  (store options of the default config: the service graph is counted by the analytics stage, not the store;\n")
	fmt.Printf("   each batch is written with its OTLP encoding, as spoor's storage exporter hands the store a request's own bytes;\n")
	fmt.Printf("   write CPU includes the index flushes and merges the writes cause)\n")

	// Build the batches first: the write phase measures the store, not the generator.
	ctx := context.Background()
	st, err := badgerstore.Open(dir, storeOptions)
	if err != nil {
		return err
	}
	var (
		writeWall time.Duration
		writeCPU  time.Duration
		writeSys  time.Duration // of writeCPU, in the kernel (fsync, page faults)
		writeGC   time.Duration // of writeCPU, the Go GC's (runtime/metrics estimate)
		spans     int
	)
	if o.writeProfile != "" {
		f, err := os.Create(o.writeProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	prev := runtime.GOMAXPROCS(1) // "on one core": Badger's own goroutines share it
	heap := sampleHeap()
	for spans < o.spans {
		var batches []encodedBatch
		for i := 0; i < 64 && spans+len(batches)*benchdata.BatchSpans < o.spans; i++ {
			b, err := encode(w.Batch())
			if err != nil {
				return err
			}
			batches = append(batches, b)
		}
		cpu0, t0 := cpuTime(), time.Now()
		sys0, gc0 := sysTime(), gcCPU()
		for _, b := range batches {
			if err := st.WriteTracesEncoded(ctx, b.td, b.raw); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			spans += b.td.SpanCount()
		}
		// The index flushes and merges these writes caused run before the clock stops:
		// otherwise they run in the background while the next batches are generated.
		if err := st.WaitIndex(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		writeWall += time.Since(t0)
		writeCPU += cpuTime() - cpu0
		writeSys += sysTime() - sys0
		writeGC += gcCPU() - gc0
	}
	peakHeap := heap.stop()
	runtime.GOMAXPROCS(prev)
	if o.writeProfile != "" {
		pprof.StopCPUProfile()
	}
	if err := st.Close(); err != nil {
		return err
	}
	disk, err := diskusage.Of(dir)
	if err != nil {
		return err
	}

	t0 := time.Now()
	st, err = badgerstore.Open(dir, storeOptions)
	if err != nil {
		return err
	}
	openTime := time.Since(t0)
	defer st.Close()

	fmt.Printf("  write, one core (GOMAXPROCS=1, fsync per commit)  %9.0f spans/s   (%0.2f µs CPU per span = %0.0f spans/s per core; target ≥ 300,000/s)\n",
		float64(spans)/writeWall.Seconds(), float64(writeCPU.Microseconds())/float64(spans), float64(spans)/writeCPU.Seconds())
	fmt.Printf("    of which in the kernel %0.2f µs (fsync, page faults), in the Go GC %0.2f µs (an estimate; it collects the generator's garbage too)\n",
		float64(writeSys.Nanoseconds())/1e3/float64(spans), float64(writeGC.Nanoseconds())/1e3/float64(spans))
	fmt.Printf("    peak Go heap while writing %0.0f MiB (the index head, merges, Badger's memtables and caches, and the generator's next 64 batches)\n",
		float64(peakHeap)/(1<<20))
	fmt.Printf("  bytes on disk per span (zstd blocks)              %9.1f         (%0.0f MiB; 10 attributes, 5 services per trace: the ≤ 100 target is for telemetrygen-shaped spans, below)\n",
		float64(disk)/float64(spans), float64(disk)/(1<<20))
	fmt.Printf("  open time                                         %9.0f ms      (target < 2 s)\n", ms(openTime))

	rng := rand.New(rand.NewPCG(3, 4))
	end := time.Now().Add(time.Minute)
	begin := end.Add(-benchdata.Window - time.Hour)
	kinds := []struct {
		name string
		q    func() storage.TraceQuery
	}{
		{"service", func() storage.TraceQuery {
			return storage.TraceQuery{ServiceName: w.Services[rng.IntN(len(w.Services))]}
		}},
		{"service + operation", func() storage.TraceQuery {
			s := rng.IntN(len(w.Services))
			return storage.TraceQuery{ServiceName: w.Services[s], OperationName: w.Ops[s][rng.IntN(len(w.Ops[s]))]}
		}},
		{"service + attribute (user.id, 1 in 10,000)", func() storage.TraceQuery {
			return storage.TraceQuery{ServiceName: w.Services[rng.IntN(len(w.Services))],
				Attributes: map[string]string{"user.id": fmt.Sprintf("user-%d", rng.IntN(10_000))}}
		}},
		{"service + attribute (customer.tier, 1 in 3)", func() storage.TraceQuery {
			return storage.TraceQuery{ServiceName: w.Services[rng.IntN(len(w.Services))],
				Attributes: map[string]string{"customer.tier": benchdata.Tiers[rng.IntN(len(benchdata.Tiers))]}}
		}},
	}
	kinds = append(kinds, extraSearches(w, rng)...)
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, k := range kinds {
		lat := make([]time.Duration, 0, o.queries)
		found := 0
		for i := 0; i < o.queries; i++ {
			q := k.q()
			q.StartTimeMin, q.StartTimeMax, q.Limit = begin, end, 20
			t0 := time.Now()
			traces, err := st.FindTraces(ctx, q)
			if err != nil {
				return fmt.Errorf("search %s: %w", k.name, err)
			}
			lat = append(lat, time.Since(t0))
			found += len(traces)
		}
		slices.Sort(lat)
		fmt.Printf("  search %-44s p50 %7.2f ms  p99 %7.2f ms   (limit 20, %0.1f traces found on average; target p99 < 50 ms)\n",
			k.name, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), float64(found)/float64(o.queries))
	}

	lat := make([]time.Duration, 0, o.lookups)
	for i := 0; i < o.lookups; i++ {
		id := w.Sample[rng.IntN(len(w.Sample))]
		t0 := time.Now()
		td, err := st.GetTrace(ctx, id)
		if err != nil {
			return fmt.Errorf("get trace %s: %w", id, err)
		}
		lat = append(lat, time.Since(t0))
		if td.SpanCount() != benchdata.SpansPerTrace {
			return fmt.Errorf("trace %s has %d spans, want %d", id, td.SpanCount(), benchdata.SpansPerTrace)
		}
	}
	slices.Sort(lat)
	fmt.Printf("  trace by ID                                       p50 %7.2f ms  p99 %7.2f ms   (%d random traces; target p99 < 2 ms)\n",
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), o.lookups)
	if o.tgenSpans > 0 {
		// Into this store too: the store of 5M spans, 50 services, 1,000 operations.
		n, wall, cpu, err := tgenWrite(st, o.tgenSpans, "")
		if err != nil {
			return err
		}
		fmt.Printf("  write, one core, telemetrygen-shaped spans (%d) into this store  %9.0f spans/s   (%0.2f µs CPU per span = %0.0f spans/s per core)\n",
			n, float64(n)/wall.Seconds(), float64(cpu.Microseconds())/float64(n), float64(n)/cpu.Seconds())
		return tgenPhase(o.tgenSpans, o.tgenProfile)
	}
	return nil
}

// encodedBatch is a batch with its OTLP encoding, as spoor's storage exporter hands
// both to the store (the request's own bytes: use_request_bytes, on in the default
// config). Encoding happens outside the measured writes, as the sender's does.
type encodedBatch struct {
	td  ptrace.Traces
	raw []byte
}

func encode(td ptrace.Traces) (encodedBatch, error) {
	var m ptrace.ProtoMarshaler
	raw, err := m.MarshalTraces(td)
	if err != nil {
		return encodedBatch{}, fmt.Errorf("encode batch: %w", err)
	}
	return encodedBatch{td: td, raw: raw}, nil
}

// storeOptions are the store's options in the default config (cmd/spoor's config.yaml:
// spoor_storage dependencies: false, since the analytics stage counts the service graph
// on every span and answers both dependency APIs).
var storeOptions = badgerstore.Options{NoDependencies: true}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// gcCPU is the runtime's estimate of the CPU time its garbage collector has taken.
func gcCPU() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// heapSampler records the largest live Go heap (objects, reachable or not yet swept)
// seen every 10 ms.
type heapSampler struct {
	done chan struct{}
	peak chan uint64
}

func sampleHeap() *heapSampler {
	h := &heapSampler{done: make(chan struct{}), peak: make(chan uint64, 1)}
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if s[0].Value.Kind() == metrics.KindUint64 {
				peak = max(peak, s[0].Value.Uint64())
			}
			select {
			case <-h.done:
				h.peak <- peak
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) stop() uint64 {
	close(h.done)
	return <-h.peak
}

// cpuTime is the process's CPU time, user and kernel.
func cpuTime() time.Duration {
	total, _ := rusage()
	return total
}

// sysTime is the process's CPU time in the kernel.
func sysTime() time.Duration {
	_, sys := rusage()
	return sys
}

func rusage() (total, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Stime.Nano())
}
