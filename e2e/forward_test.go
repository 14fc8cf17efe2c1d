package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestForwardingSurvivesOutage forwards one Spoor's stream to three others, over OTLP
// gRPC, OTLP HTTP and Zipkin (SPOOR_FORWARD_*), kills all three destinations for a
// minute while spans keep arriving — and SIGKILLs the forwarding Spoor itself halfway
// through, its queues full, and restarts it — restarts the destinations, and checks
// that every span the first Spoor acknowledged reaches every destination, and that
// ingest latency did not change while the destinations were down.
//
// It runs in parallel with the other parallel tests: for most of its minute it waits.
func TestForwardingSurvivesOutage(t *testing.T) {
	t.Parallel()
	const outage = time.Minute
	type dest struct {
		name string
		ep   endpoints
		dir  string
		s    *spoor
	}
	dests := []*dest{{name: "otlp_grpc"}, {name: "otlp_http"}, {name: "zipkin"}}
	for _, d := range dests {
		d.ep, d.dir = freeEndpoints(t), t.TempDir()
		d.s = startSpoorOn(t, d.ep, d.dir)
	}
	aEnv := []string{
		"SPOOR_FORWARD_OTLP_GRPC=" + dests[0].ep.OTLPGRPC,
		"SPOOR_FORWARD_OTLP_HTTP=http://" + dests[1].ep.OTLPHTTP,
		"SPOOR_FORWARD_ZIPKIN=http://" + dests[2].ep.Zipkin,
	}
	aEp, aDir := freeEndpoints(t), t.TempDir()
	a := startSpoorOn(t, aEp, aDir, aEnv...)

	conn, err := grpc.NewClient(a.ep.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	const tracesPerBatch, spansPerTrace = 4, 5
	var (
		mu        sync.Mutex
		acked     []pcommon.TraceID
		phase     = "before"
		latencies = map[string][]time.Duration{}
		failures  int
		stop      = make(chan struct{})
		done      = make(chan struct{})
	)
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock()
			p := phase
			mu.Unlock()
			if p == "paused" {
				continue
			}
			td, ids := loadBatch(rng, tracesPerBatch, spansPerTrace)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
			took := time.Since(start)
			cancel()
			mu.Lock()
			if err != nil {
				failures++
				t.Logf("export in phase %s failed after %v: %v", phase, took, err)
			} else {
				acked = append(acked, ids...)
				latencies[phase] = append(latencies[phase], took)
			}
			mu.Unlock()
		}
	}()
	setPhase := func(p string) {
		mu.Lock()
		phase = p
		mu.Unlock()
	}

	time.Sleep(5 * time.Second)
	for _, d := range dests {
		d.s.kill()
	}
	setPhase("outage")
	outageStart := time.Now()
	time.Sleep(outage / 2)
	// The forwarding Spoor itself crashes mid-outage, with spans queued for every
	// destination: the queue is on disk, so they are sent after its restart.
	setPhase("paused")
	time.Sleep(200 * time.Millisecond) // let an export in flight finish
	a.kill()
	a = startSpoorOn(t, aEp, aDir, aEnv...)
	setPhase("outage")
	time.Sleep(time.Until(outageStart.Add(outage)))
	a.alive()
	open := a.metrics()
	setPhase("after")
	for _, d := range dests {
		d.s = startSpoorOn(t, d.ep, d.dir)
	}
	back := time.Now()
	down := back.Sub(outageStart)
	t.Logf("destinations down for %v", down.Round(time.Millisecond))
	if down < outage {
		t.Errorf("destinations down for %v only, want %v", down, outage)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	<-done

	mu.Lock()
	ids := append([]pcommon.TraceID(nil), acked...)
	before, during := latencies["before"], latencies["outage"]
	nFailures := failures
	mu.Unlock()
	if nFailures > 0 {
		t.Errorf("%d exports to the forwarding Spoor failed; a forwarding outage must not refuse ingest", nFailures)
	}
	if len(before) < 20 || len(during) < 300 {
		t.Fatalf("too few exports acknowledged: %d before, %d during the outage", len(before), len(during))
	}
	p50b, p99b, maxb := quantiles(before)
	p50d, p99d, maxd := quantiles(during)
	t.Logf("ingest latency (OTLP gRPC export of %d spans): before p50 %v p99 %v max %v (%d exports); during outage p50 %v p99 %v max %v (%d exports)",
		tracesPerBatch*spansPerTrace, p50b, p99b, maxb, len(before), p50d, p99d, maxd, len(during))
	// Bounds a waiting ingest would cross, not a comparison of timings (the machine's
	// load doubles medians): an export that waited on a down destination would wait for
	// at least a retry interval (seconds), on every export.
	if p50d > max(2*p50b+20*time.Millisecond, 250*time.Millisecond) || maxd > 2*time.Second {
		t.Errorf("ingest slowed during the forwarding outage: p50 %v → %v, max %v → %v", p50b, p50d, maxb, maxd)
	}
	for _, d := range dests {
		if v := metricValue(open, "spoor_forward_breaker_transitions", `destination="`+d.name+`",state="open"`); v < 1 {
			t.Errorf("breaker of %s never opened during the outage (transitions to open: %v)", d.name, v)
		}
	}

	// Every acknowledged trace reaches every destination, whole.
	httpClient := &http.Client{Timeout: 10 * time.Second}
	for _, d := range dests {
		deadline := time.Now().Add(60 * time.Second)
		pending := ids
		for len(pending) > 0 {
			// Eight readers at a time: thousands of traces, each one request.
			var (
				still   []pcommon.TraceID
				stillMu sync.Mutex
				readers sync.WaitGroup
				next    = make(chan pcommon.TraceID)
			)
			for range 8 {
				readers.Add(1)
				go func() {
					defer readers.Done()
					for id := range next {
						// Not getJSONWith: t.Fatal must not be called off the test's goroutine.
						var env jaegerEnvelope[[]jaegerTrace]
						resp, err := httpClient.Get("http://" + d.ep.Query + "/api/traces/" + id.String())
						if err == nil {
							if resp.StatusCode == http.StatusOK {
								err = json.NewDecoder(resp.Body).Decode(&env)
							}
							resp.Body.Close()
						}
						if err != nil || len(env.Data) != 1 || len(env.Data[0].Spans) != spansPerTrace {
							stillMu.Lock()
							still = append(still, id)
							stillMu.Unlock()
						}
					}
				}()
			}
			for _, id := range pending {
				next <- id
			}
			close(next)
			readers.Wait()
			pending = still
			if len(pending) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if len(pending) > 0 {
			t.Errorf("%s: %d of %d acknowledged traces missing or partial 60s after the restart (first %s)",
				d.name, len(pending), len(ids), pending[0])
		} else {
			t.Logf("%s: all %d acknowledged traces (%d spans) arrived, checked %v after the destinations restarted",
				d.name, len(ids), len(ids)*spansPerTrace, time.Since(back).Round(time.Second))
		}
	}
	m := a.metrics()
	if v := metricValue(m, "spoor_forward_dropped_spans", ""); v > 0 {
		t.Errorf("spoor_forward_dropped_spans = %v, want 0", v)
	}
	for _, d := range dests {
		if v := metricValue(m, "spoor_forward_breaker_state", `destination="`+d.name+`"`); v != 0 {
			t.Errorf("breaker of %s in state %v after recovery, want 0 (closed)", d.name, v)
		}
	}
}

// quantiles returns the p50, p99 and max of ds.
func quantiles(ds []time.Duration) (p50, p99, maxd time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

// metricValue sums the samples of a Prometheus metric whose labels contain every
// label pair of labels ("" for any), or returns -1 when there is none.
func metricValue(text, name, labels string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+-]+)$`)
	sum, found := 0.0, false
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		ok := true
		for _, l := range splitLabels(labels) {
			if !regexp.MustCompile(regexp.QuoteMeta(l) + `[,}]`).MatchString(m[1]) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	if !found {
		return -1
	}
	return sum
}

func splitLabels(s string) []string {
	if s == "" {
		return nil
	}
	return regexp.MustCompile(`,\s*`).Split(s, -1)
}
