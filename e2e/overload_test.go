package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/spoortrace/spoor/storage/badgerstore"
)

// TestOverload measures the rate Spoor sustains and the rate it accepts when offered
// five times that, in alternating windows (three of each, 15 s and 30 s in all), so
// that both meet the same store and the same background load. Spoor must stay up,
// keep its memory under SPOOR_MEMORY_LIMIT_MIB, refuse what it cannot take with
// RESOURCE_EXHAUSTED and a retry delay, keep accepting close to its sustained rate, and
// store every span it acknowledged. It logs the rates second by second and Spoor's CPU
// per accepted span in both kinds of window: what refusing costs, apart from the noise
// of a shared machine.
func TestOverload(t *testing.T) {
	// Under the race detector, memory use grows 5–10× (Go's race detector docs), so
	// the binary gets four times the budget and the in-flight bound it would have at
	// 512 MiB, set explicitly.
	limitMiB := 512
	if raceEnabled {
		limitMiB = 2048
	}
	dataDir := t.TempDir()
	s := startSpoorArgs(t, freeEndpoints(t), dataDir,
		[]string{"--set", "processors::spoor_ingest::max_inflight_spans=20480"},
		fmt.Sprintf("SPOOR_MEMORY_LIMIT_MIB=%d", limitMiB))
	mem := watchMemory(t, s.cmd.Process.Pid)

	conns := make([]*grpc.ClientConn, 4)
	for i := range conns {
		conn, err := grpc.NewClient(s.ep.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[i] = conn
	}
	// Requests of 512 spans (the OTel SDK's default export batch), 4 traces of 128 spans.
	// They are made by writing fresh trace IDs into one marshalled request, so that the
	// load generator, on the same cores as Spoor, costs little beside it.
	const tracesPerBatch, spansPerTrace = 4, 128
	const batchSpans = tracesPerBatch * spansPerTrace
	tmpl := newRequestTemplate(t, tracesPerBatch, spansPerTrace)
	var (
		mu       sync.Mutex
		acked    []pcommon.TraceID
		refused  atomic.Int64
		failed   atomic.Int64
		noDelay  atomic.Int64
		ackedNow atomic.Int64
	)
	// send sends one batch and reports whether it was acknowledged; a refusal returns
	// the delay the server asked for.
	send := func(rng *rand.Rand, conn *grpc.ClientConn) (bool, time.Duration) {
		body, ids := tmpl.next(rng)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		msg := rawMessage(body)
		err := conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &msg, new(rawMessage),
			grpc.ForceCodec(rawCodec{}))
		if err == nil {
			mu.Lock()
			acked = append(acked, ids...)
			mu.Unlock()
			ackedNow.Add(batchSpans)
			return true, 0
		}
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted {
			failed.Add(1)
			t.Logf("export failed with something other than RESOURCE_EXHAUSTED: %v", err)
			return false, 100 * time.Millisecond
		}
		refused.Add(1)
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				return false, ri.GetRetryDelay().AsDuration()
			}
		}
		noDelay.Add(1)
		return false, time.Second
	}

	// measure runs workers senders for d (paced at one batch per pace each, or closed
	// loop when pace is 0) and returns the rate acknowledged.
	measure := func(d time.Duration, workers int, pace time.Duration) float64 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		before := ackedNow.Load()
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
				client := conns[w%len(conns)]
				next := time.Now()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if pace > 0 {
						if wait := time.Until(next); wait > 0 {
							select {
							case <-stop:
								return
							case <-time.After(wait):
							}
						}
						next = next.Add(pace)
					}
					if ok, delay := send(rng, client); !ok {
						// What an SDK does: wait as asked before the next attempt.
						select {
						case <-stop:
							return
						case <-time.After(delay):
						}
						next = time.Now()
					}
				}
			}(w)
		}
		// The accepted rate second by second: waves of refusals and idle seconds show
		// here, not in the average.
		var series []string
		last, lastRefused := before, refused.Load()
		for i := 0; i < int(d/time.Second); i++ {
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Second)))
			now, nowRefused := ackedNow.Load(), refused.Load()
			series = append(series, fmt.Sprintf("%d/%d", (now-last)/1000, nowRefused-lastRefused))
			last, lastRefused = now, nowRefused
		}
		time.Sleep(time.Until(start.Add(d)))
		close(stop)
		wg.Wait()
		t.Logf("%d senders, second by second: thousand spans accepted/requests refused: %s", workers, strings.Join(series, " "))
		return float64(ackedNow.Load()-before) / time.Since(start).Seconds()
	}

	// The sustained rate: closed-loop senders (each sends its next batch when the last
	// one is acknowledged), enough of them to keep the store's queue deep — up to 12,288
	// spans in flight, under the point where admission refuses (three quarters of
	// 20,480) — so that it runs at its best without a refusal. The overload: five
	// times that rate, offered by 80 paced senders (up to 40,960 spans in flight).
	// The two alternate in three rounds, so that both are measured under the same
	// background load: the machine's other work (and the load generator, on the same
	// cores) moves either by tens of percent from one minute to the next.
	type window struct {
		spans, seconds, spoorCPU, genCPU float64
	}
	var sustainedW, overloadW window
	run := func(w *window, d time.Duration, workers int, pace time.Duration) float64 {
		before := ackedNow.Load()
		cpu0, gen0 := procCPU(t, s.cmd.Process.Pid).Seconds(), selfCPU(t)
		start := time.Now()
		rate := measure(d, workers, pace)
		w.seconds += time.Since(start).Seconds()
		w.spans += float64(ackedNow.Load() - before)
		w.spoorCPU += procCPU(t, s.cmd.Process.Pid).Seconds() - cpu0
		w.genCPU += selfCPU(t) - gen0
		return rate
	}
	// A first closed-loop window, not counted (an empty store is faster than the one
	// the later windows meet), sets the overload's pace.
	const closedLoopSenders, overloadWorkers = 24, 80
	first := measure(3*time.Second, closedLoopSenders, 0)
	if first < 500 {
		t.Fatalf("sustained rate %.0f spans/s: the load did not run", first)
	}
	pace := time.Duration(float64(time.Second) * batchSpans * overloadWorkers / (5 * first))
	for round := 0; round < 3; round++ {
		run(&overloadW, 10*time.Second, overloadWorkers, pace)
		before := refused.Load()
		run(&sustainedW, 5*time.Second, closedLoopSenders, 0)
		if n := refused.Load() - before; n > 0 {
			t.Logf("%d refusals in a closed-loop window (the overload's queue draining)", n)
		}
	}
	sustained, accepted := sustainedW.spans/sustainedW.seconds, overloadW.spans/overloadW.seconds
	s.alive()
	peakRSS, peakAnon := mem.stop()
	metrics := s.metrics()
	refusedSpans := metricValue(metrics, "spoor_ingest_refused_spans", "")
	refusedEarly := metricValue(metrics, "spoor_ingest_refused_requests", "")

	t.Logf("sustained %.0f spans/s (%d closed-loop senders, 3 windows, %.0f s); offered 5× a first window's rate = %.0f spans/s (80 paced senders, 3 windows, %.0f s): accepted %.0f spans/s (%.0f%% of sustained), %d requests refused with RESOURCE_EXHAUSTED (%v before decoding, spoor_ingest_refused_requests; %v spans after, spoor_ingest_refused_spans), %d other failures",
		sustained, closedLoopSenders, sustainedW.seconds, 5*first, overloadW.seconds, accepted, 100*accepted/sustained, refused.Load(), refusedEarly, refusedSpans, failed.Load())
	t.Logf("CPU: spoor %.2f cores sustained, %.2f under overload (%.1f / %.1f CPU-s per million accepted spans); load generator and test %.2f / %.2f cores",
		sustainedW.spoorCPU/sustainedW.seconds, overloadW.spoorCPU/overloadW.seconds,
		1e6*sustainedW.spoorCPU/sustainedW.spans, 1e6*overloadW.spoorCPU/overloadW.spans,
		sustainedW.genCPU/sustainedW.seconds, overloadW.genCPU/overloadW.seconds)
	t.Logf("memory: peak RSS %d MiB, peak anonymous RSS %d MiB, limit %d MiB", peakRSS>>20, peakAnon>>20, limitMiB)

	if failed.Load() > 0 {
		t.Errorf("%d exports failed with an error other than RESOURCE_EXHAUSTED", failed.Load())
	}
	if noDelay.Load() > 0 {
		t.Errorf("%d refusals carried no RetryInfo: SDKs do not retry RESOURCE_EXHAUSTED without it", noDelay.Load())
	}
	if refused.Load() == 0 || max(refusedSpans, refusedEarly) <= 0 {
		t.Errorf("no refusals under 5× overload (%d requests, metrics %v, %v): the bound did not act", refused.Load(), refusedEarly, refusedSpans)
	}
	if peakRSS > int64(limitMiB)<<20 {
		t.Errorf("peak RSS %d MiB over SPOOR_MEMORY_LIMIT_MIB=%d", peakRSS>>20, limitMiB)
	}
	// The target is 90%; the load generator shares the machine's cores with
	// Spoor (and this machine with other work), so the test holds a looser line.
	if accepted < 0.7*sustained {
		t.Errorf("accepted %.0f spans/s under overload, below 70%% of the sustained %.0f", accepted, sustained)
	}

	// Every acknowledged trace is stored, whole: read from the store itself once spoor
	// has stopped (millions of spans are too many to fetch through the query API).
	s.stop()
	mu.Lock()
	ids := append([]pcommon.TraceID(nil), acked...)
	mu.Unlock()
	missing := checkStoredOffline(t, dataDir, ids, spansPerTrace)
	t.Logf("%d acknowledged traces (%d spans) checked in the store: %d missing or partial", len(ids), len(ids)*spansPerTrace, missing)
	if missing > 0 {
		t.Errorf("%d acknowledged traces missing or partial", missing)
	}
}

// checkStoredOffline opens a stopped spoor's store and returns how many of the traces
// are missing or do not have spans spans.
func checkStoredOffline(t *testing.T, dataDir string, ids []pcommon.TraceID, spans int) int {
	t.Helper()
	st, err := badgerstore.Open(dataDir, badgerstore.Options{NoSyncWrites: true})
	if err != nil {
		t.Fatalf("open the stopped spoor's store: %v", err)
	}
	defer st.Close()
	missing := 0
	for _, id := range ids {
		td, err := st.GetTrace(context.Background(), id)
		if err != nil || td.SpanCount() != spans {
			missing++
		}
	}
	return missing
}

// requestTemplate is one marshalled OTLP export request with the offsets of its trace
// IDs, to make many distinct requests cheaply.
type requestTemplate struct {
	body    []byte
	offsets [][]int // per trace, where its ID sits in body
}

func newRequestTemplate(t *testing.T, traces, spans int) *requestTemplate {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	td, ids := loadBatch(rng, traces, spans)
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	rt := &requestTemplate{body: body}
	for _, id := range ids {
		var offs []int
		for i := 0; ; {
			j := bytes.Index(body[i:], id[:])
			if j < 0 {
				break
			}
			offs = append(offs, i+j)
			i += j + len(id)
		}
		if len(offs) != spans {
			t.Fatalf("trace ID found %d times in the template, want %d", len(offs), spans)
		}
		rt.offsets = append(rt.offsets, offs)
	}
	return rt
}

// next returns a copy of the request with fresh random trace IDs.
func (rt *requestTemplate) next(rng *rand.Rand) ([]byte, []pcommon.TraceID) {
	body := bytes.Clone(rt.body)
	ids := make([]pcommon.TraceID, len(rt.offsets))
	for i, offs := range rt.offsets {
		binary.BigEndian.PutUint64(ids[i][:8], rng.Uint64())
		binary.BigEndian.PutUint64(ids[i][8:], rng.Uint64()|1)
		for _, o := range offs {
			copy(body[o:], ids[i][:])
		}
	}
	return body, ids
}

// memoryWatch samples a process's RSS every 100 ms.
type memoryWatch struct {
	done           chan struct{}
	wg             sync.WaitGroup
	peakRSS, peakA int64
}

func watchMemory(t *testing.T, pid int) *memoryWatch {
	m := &memoryWatch{done: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			rss, anon, err := procMemory(pid)
			if err == nil {
				m.peakRSS, m.peakA = max(m.peakRSS, rss), max(m.peakA, anon)
			}
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-m.done:
		default:
			m.stop()
		}
	})
	return m
}

// stop ends sampling and returns the peaks of RSS and of its anonymous part, in bytes.
func (m *memoryWatch) stop() (rss, anon int64) {
	close(m.done)
	m.wg.Wait()
	return m.peakRSS, m.peakA
}

// procMemory reads VmRSS and RssAnon of a process, in bytes.
func procMemory(pid int) (rss, anon int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = n << 10
		case "RssAnon":
			anon = n << 10
		}
	}
	return rss, anon, sc.Err()
}

// selfCPU is the CPU time this test process has used, in seconds.
func selfCPU(t *testing.T) float64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
