package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// BenchmarkAnalyticsShareOfCPU runs bin/spoor with its default config and with the
// same config without spoor_analytics, both at the same time in every round, each with
// its own sender, sends both the same demo-shaped OTLP batches (512 spans, traces
// across 6 services with client/server pairs, calls to uninstrumented peers, 5%
// errors, one alert rule), and compares the CPU each process used per span (from
// /proc). The target: analytics add under 10%. (Run one after the other, the
// two configurations' rounds read from 4% to 15% added on this shared machine: its
// noise is the size of the target. At the same time, it falls on both alike.)
func BenchmarkAnalyticsShareOfCPU(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Fatal("reads process CPU time from /proc")
	}
	off := defaultConfigVariant(b, "no-analytics",
		"processors: [spoor_ingest, spoor_analytics, spoor_sampler]", "processors: [spoor_ingest, spoor_sampler]")
	rules := filepath.Join(b.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(strings.Replace(cardRules, "payment-service", "svc-1", 1)), 0o644); err != nil {
		b.Fatal(err)
	}
	bodies := demoShapedBodies(300)
	spans := float64(len(bodies) * 512)
	var cpu [2]time.Duration // [off, on]
	var added []float64      // per round
	for i := 0; i < b.N; i++ {
		rc := sideBySide(func(v int) time.Duration {
			args := []string{"--config", "file:" + off}
			if v == 1 {
				args = nil
			}
			return runAndMeasure(b, args, []string{"SPOOR_ALERT_RULES=" + rules}, postBodies(bodies))
		})
		if b.Failed() {
			return
		}
		cpu[0] += rc[0]
		cpu[1] += rc[1]
		added = append(added, 100*(rc[1]-rc[0]).Seconds()/rc[0].Seconds())
	}
	offUS := float64(cpu[0].Microseconds()) / float64(b.N) / spans
	onUS := float64(cpu[1].Microseconds()) / float64(b.N) / spans
	b.ReportMetric(offUS, "cpu-µs/span-without")
	b.ReportMetric(onUS, "cpu-µs/span-with")
	b.ReportMetric(100*(onUS-offUS)/offUS, "%-added")
	slices.Sort(added)
	b.ReportMetric(added[len(added)/2], "%-added-median")
}

// sideBySide runs run(0) and run(1) at the same time, each in a goroutine of its own,
// and returns what each measured: run at once, the shared machine's noise (other
// tenants, the clock) falls on both alike, where one after the other their figures
// swing by ±10%. A check that fails in run ends its goroutine; the caller then sees
// b.Failed.
func sideBySide(run func(v int) time.Duration) [2]time.Duration {
	var out [2]time.Duration
	var wg sync.WaitGroup
	for v := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done() // also when a failed check ends the goroutine
			out[v] = run(v)
		}()
	}
	wg.Wait()
	return out
}

// defaultConfigVariant writes spoor's default config, each (old, new) pair of edits
// replacing old once, to a file named for name, and returns its path. It fails when the
// default config lacks an old.
func defaultConfigVariant(b testing.TB, name string, edits ...string) string {
	b.Helper()
	cfg, err := os.ReadFile(filepath.Join(repoRoot(b), "cmd", "spoor", "config.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i+1 < len(edits); i += 2 {
		if !bytes.Contains(cfg, []byte(edits[i])) {
			b.Fatalf("the default config has no %q", edits[i])
		}
		cfg = bytes.Replace(cfg, []byte(edits[i]), []byte(edits[i+1]), 1)
	}
	file := filepath.Join(b.TempDir(), name+".yaml")
	if err := os.WriteFile(file, cfg, 0o644); err != nil {
		b.Fatal(err)
	}
	return file
}

func repoRoot(testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// demoShapedBodies are n OTLP export requests of 512 spans each.
func demoShapedBodies(n int) [][]byte {
	rng := rand.New(rand.NewPCG(21, 22))
	var out [][]byte
	for range n {
		td := ptrace.NewTraces()
		res := map[string]ptrace.SpanSlice{}
		count := 0
		for count < 512 {
			tid := pcommon.TraceID{}
			for i := range tid {
				tid[i] = byte(rng.Uint32())
			}
			start := time.Now()
			var add func(parent pcommon.SpanID, svc string, depth int)
			add = func(parent pcommon.SpanID, svc string, depth int) {
				if count >= 512 {
					return
				}
				spans, ok := res[svc]
				if !ok {
					rs := td.ResourceSpans().AppendEmpty()
					rs.Resource().Attributes().PutStr("service.name", svc)
					rs.Resource().Attributes().PutStr("host.name", "bench")
					spans = rs.ScopeSpans().AppendEmpty().Spans()
					res[svc] = spans
				}
				mk := func(name string, kind ptrace.SpanKind, parent pcommon.SpanID) (ptrace.Span, pcommon.SpanID) {
					sp := spans.AppendEmpty()
					var id pcommon.SpanID
					for i := range id {
						id[i] = byte(rng.Uint32())
					}
					sp.SetTraceID(tid)
					sp.SetSpanID(id)
					sp.SetParentSpanID(parent)
					sp.SetName(name)
					sp.SetKind(kind)
					sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
					sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(1+rng.IntN(50)) * time.Millisecond)))
					sp.Attributes().PutStr("http.request.method", "POST")
					sp.Attributes().PutStr("payment.method", "card")
					if rng.IntN(20) == 0 {
						sp.Status().SetCode(ptrace.StatusCodeError)
					}
					count++
					return sp, id
				}
				_, id := mk("handle", ptrace.SpanKindServer, parent)
				for range rng.IntN(3) {
					if count >= 512 || depth == 0 {
						return
					}
					callee := fmt.Sprintf("svc-%d", rng.IntN(6))
					cl, cid := mk("call "+callee, ptrace.SpanKindClient, id)
					if rng.IntN(4) == 0 {
						cl.Attributes().PutStr("peer.service", "postgres")
						continue
					}
					add(cid, callee, depth-1)
				}
			}
			add(pcommon.SpanID{}, fmt.Sprintf("svc-%d", rng.IntN(6)), 3)
		}
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			panic("BUG: " + err.Error())
		}
		out = append(out, body)
	}
	return out
}

// postBodies is a load that POSTs bodies to an OTLP/HTTP endpoint from two senders.
func postBodies(bodies [][]byte) func(tb testing.TB, otlpHTTP string) {
	return func(tb testing.TB, otlpHTTP string) {
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(bodies); i += 2 {
					if !postTraces(tb, otlpHTTP, bodies[i]) {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}

// postTraces POSTs one OTLP/HTTP protobuf body; false (the error reported) when it fails.
func postTraces(tb testing.TB, otlpHTTP string, body []byte) bool {
	resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		tb.Error(err)
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Errorf("POST /v1/traces: %s", resp.Status)
		return false
	}
	return true
}

// runAndMeasure starts spoor with args and env, runs load against its OTLP/HTTP
// endpoint, waits for the analytics flush, and returns the CPU time the process used
// from the load's start. spoor then stops with SIGTERM (a profile it writes at
// shutdown is complete when this returns).
func runAndMeasure(tb testing.TB, args, env []string, load func(tb testing.TB, otlpHTTP string)) time.Duration {
	tb.Helper()
	return runAndMeasureSteady(tb, args, env, nil, load, 3*time.Second)
}

// runAndMeasureSteady is runAndMeasure with a warm-up load offered first, outside the
// measurement (nil: none), and settle the time measured after the load.
func runAndMeasureSteady(tb testing.TB, args, env []string, warmup, load func(tb testing.TB, otlpHTTP string), settle time.Duration) time.Duration {
	tb.Helper()
	return runBinaryAndMeasureSteady(tb, spoorBin, args, env, warmup, load, settle)
}

// runBinaryAndMeasureSteady is runAndMeasureSteady with the spoor binary bin, for
// comparing two builds.
func runBinaryAndMeasureSteady(tb testing.TB, bin string, args, env []string, warmup, load func(tb testing.TB, otlpHTTP string), settle time.Duration) time.Duration {
	tb.Helper()
	ep := freeEndpoints(tb)
	dir := tb.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), ep.env(dir)...), env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + ep.Query + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("spoor not healthy:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if warmup != nil {
		warmup(tb, ep.OTLPHTTP)
	}
	before := procCPU(tb, cmd.Process.Pid)
	load(tb, ep.OTLPHTTP)
	time.Sleep(settle) // one analytics flush, and the store's background work
	return procCPU(tb, cmd.Process.Pid) - before
}

// procCPU is a process' user + system CPU time from /proc/PID/stat.
func procCPU(tb testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("parse /proc/%d/stat: %s", pid, b)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}
