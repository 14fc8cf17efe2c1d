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
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

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

const (
	batchSpans    = 512
	spansPerTrace = 5
	window        = 2 * time.Hour // spans start over the last two hours: several buckets
)

// workload makes telemetrygen-shaped batches: traces of a root and four children across
// services, 10 attributes per span, of which one has high cardinality.
type workload struct {
	o        options
	rng      *rand.Rand
	services []string
	ops      [][]string
	start    time.Time
	sample   []pcommon.TraceID // a reservoir of written trace IDs for lookups
	written  int
}

func newWorkload(o options) *workload {
	w := &workload{o: o, rng: rand.New(rand.NewPCG(1, 2)), start: time.Now().Add(-window)}
	for s := 0; s < o.services; s++ {
		w.services = append(w.services, fmt.Sprintf("service-%02d", s))
		var ops []string
		for p := 0; p < o.opsPerService; p++ {
			ops = append(ops, fmt.Sprintf("op-%02d-%02d", s, p))
		}
		w.ops = append(w.ops, ops)
	}
	return w
}

var (
	methods = []string{"GET", "POST", "PUT", "DELETE"}
	tiers   = []string{"free", "pro", "enterprise"}
)

// batch returns the next batch; its spans start at a time that advances with the
// number of spans written, so the store fills two hours evenly.
func (w *workload) batch() ptrace.Traces {
	td := ptrace.NewTraces()
	at := w.start.Add(time.Duration(float64(window) * float64(w.written) / float64(w.o.spans)))
	// One resource per service in the batch, as an SDK per service would send.
	res := map[int]ptrace.SpanSlice{}
	spansOf := func(s int) ptrace.SpanSlice {
		if sl, ok := res[s]; ok {
			return sl
		}
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", w.services[s])
		rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", s%7))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("storebench")
		res[s] = ss.Spans()
		return res[s]
	}
	for n := 0; n < batchSpans; n += spansPerTrace {
		var tid pcommon.TraceID
		putRandom(w.rng, tid[:])
		if len(w.sample) < 100_000 {
			w.sample = append(w.sample, tid)
		} else if i := w.rng.IntN(w.written/spansPerTrace + 1); i < len(w.sample) {
			w.sample[i] = tid
		}
		rootSvc := w.rng.IntN(len(w.services))
		traceDur := time.Duration(1+w.rng.ExpFloat64()*20) * time.Millisecond
		t0 := at.Add(time.Duration(w.rng.IntN(1000)) * time.Microsecond)
		var root pcommon.SpanID
		for i := 0; i < spansPerTrace; i++ {
			svc := rootSvc
			if i > 0 {
				svc = (rootSvc + i*7) % len(w.services)
			}
			sp := spansOf(svc).AppendEmpty()
			var sid pcommon.SpanID
			putRandom(w.rng, sid[:])
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			if i == 0 {
				root = sid
				sp.SetKind(ptrace.SpanKindServer)
			} else {
				sp.SetParentSpanID(root)
				sp.SetKind(ptrace.SpanKindClient)
			}
			sp.SetName(w.ops[svc][w.rng.IntN(len(w.ops[svc]))])
			start := t0.Add(time.Duration(i) * traceDur / 10)
			dur := traceDur - time.Duration(i)*traceDur/10
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(dur)))
			a := sp.Attributes()
			a.PutStr("http.request.method", methods[w.rng.IntN(len(methods))])
			a.PutInt("http.response.status_code", int64([]int{200, 200, 200, 201, 404, 500}[w.rng.IntN(6)]))
			a.PutStr("customer.tier", tiers[w.rng.IntN(len(tiers))])
			a.PutStr("user.id", fmt.Sprintf("user-%d", w.rng.IntN(10_000)))
			for k := 0; k < 6; k++ {
				a.PutStr(fmt.Sprintf("attr%d", k), fmt.Sprintf("value-%d", k))
			}
			if w.rng.IntN(50) == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
	}
	w.written += td.SpanCount()
	return td
}

func putRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[len(b)-1] |= 1
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
	w := newWorkload(o)
	fmt.Printf("spoor trace store benchmark: %d spans, %d services, %d operations, 10 attributes per span, traces of %d spans\n",
		o.spans, o.services, o.services*o.opsPerService, spansPerTrace)

	// Build the batches first: the write phase measures the store, not the generator.
	ctx := context.Background()
	st, err := badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		return err
	}
	var (
		writeWall time.Duration
		writeCPU  time.Duration
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
	for spans < o.spans {
		var batches []ptrace.Traces
		for i := 0; i < 64 && spans+len(batches)*batchSpans < o.spans; i++ {
			batches = append(batches, w.batch())
		}
		cpu0, t0 := cpuTime(), time.Now()
		for _, td := range batches {
			if err := st.WriteTraces(ctx, td); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			spans += td.SpanCount()
		}
		writeWall += time.Since(t0)
		writeCPU += cpuTime() - cpu0
	}
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
	st, err = badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		return err
	}
	openTime := time.Since(t0)
	defer st.Close()

	fmt.Printf("  write, one core (GOMAXPROCS=1, fsync per commit)  %9.0f spans/s   (%0.2f µs CPU per span; target ≥ 300,000/s)\n",
		float64(spans)/writeWall.Seconds(), float64(writeCPU.Microseconds())/float64(spans))
	fmt.Printf("  bytes on disk per span (zstd blocks)              %9.1f         (%0.0f MiB; target ≤ 100; Jaeger's Badger ≈ 290)\n",
		float64(disk)/float64(spans), float64(disk)/(1<<20))
	fmt.Printf("  open time                                         %9.0f ms      (target < 2 s)\n", ms(openTime))

	rng := rand.New(rand.NewPCG(3, 4))
	end := time.Now().Add(time.Minute)
	begin := end.Add(-window - time.Hour)
	kinds := []struct {
		name string
		q    func() storage.TraceQuery
	}{
		{"service", func() storage.TraceQuery {
			return storage.TraceQuery{ServiceName: w.services[rng.IntN(len(w.services))]}
		}},
		{"service + operation", func() storage.TraceQuery {
			s := rng.IntN(len(w.services))
			return storage.TraceQuery{ServiceName: w.services[s], OperationName: w.ops[s][rng.IntN(len(w.ops[s]))]}
		}},
		{"service + attribute (user.id, 1 in 10,000)", func() storage.TraceQuery {
			return storage.TraceQuery{ServiceName: w.services[rng.IntN(len(w.services))],
				Attributes: map[string]string{"user.id": fmt.Sprintf("user-%d", rng.IntN(10_000))}}
		}},
		{"service + attribute (customer.tier, 1 in 3)", func() storage.TraceQuery {
			return storage.TraceQuery{ServiceName: w.services[rng.IntN(len(w.services))],
				Attributes: map[string]string{"customer.tier": tiers[rng.IntN(len(tiers))]}}
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
		id := w.sample[rng.IntN(len(w.sample))]
		t0 := time.Now()
		td, err := st.GetTrace(ctx, id)
		if err != nil {
			return fmt.Errorf("get trace %s: %w", id, err)
		}
		lat = append(lat, time.Since(t0))
		if td.SpanCount() != spansPerTrace {
			return fmt.Errorf("trace %s has %d spans, want %d", id, td.SpanCount(), spansPerTrace)
		}
	}
	slices.Sort(lat)
	fmt.Printf("  trace by ID                                       p50 %7.2f ms  p99 %7.2f ms   (%d random traces; target p99 < 2 ms)\n",
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), o.lookups)
	if o.tgenSpans > 0 {
		return tgenPhase(o.tgenSpans, o.tgenProfile)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
