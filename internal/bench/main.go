// Command bench is `make bench`: it starts bin/spoor on loopback with a fresh data
// directory, drives it with telemetrygen over OTLP gRPC, and prints what Spoor stored
// and what that cost — counted on Spoor's side, never from what the generator sent.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/spoortrace/spoor/internal/proc"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spoortrace/spoor/internal/diskusage"
)

func main() {
	var o options
	flag.StringVar(&o.spoor, "spoor", "bin/spoor", "spoor binary")
	flag.StringVar(&o.telemetrygen, "telemetrygen", "telemetrygen", "telemetrygen binary (v0.161.0)")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long telemetrygen sends")
	flag.IntVar(&o.workers, "workers", 128, "telemetrygen workers")
	flag.Float64Var(&o.rate, "rate", 250, "traces per second per telemetrygen worker (0: unthrottled, which on 2 cores starves spoor of CPU)")
	flag.IntVar(&o.childSpans, "child-spans", 4, "child spans per trace")
	flag.IntVar(&o.lookups, "lookups", 1000, "trace-by-ID lookups")
	flag.IntVar(&o.replayStreams, "replay-streams", 8, "concurrent gRPC senders of the replay phase")
	flag.StringVar(&o.spoorConfig, "spoor-config", "", "run spoor with --config FILE (e.g. one adding the pprof extension)")
	flag.StringVar(&o.profileURL, "profile-url", "", "during the replay phase, fetch a 20 s CPU profile of spoor from this pprof URL into replay.prof")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	spoor, telemetrygen string
	duration            time.Duration
	workers, childSpans int
	rate                float64
	lookups             int
	replayStreams       int
	spoorConfig         string
	profileURL          string
}

// meter measures spoor's side of one load phase.
type meter struct {
	pid        int
	metricsURL string
}

type phase struct {
	spans   float64
	elapsed time.Duration
	cpu     float64
}

// measure runs load and returns what spoor stored meanwhile, over the time spans kept
// arriving, and the CPU time spoor spent.
func (m meter) measure(load func() error) (phase, error) {
	cpu0, err := cpuSeconds(m.pid)
	if err != nil {
		return phase{}, err
	}
	stored0, err := storedSpans(m.metricsURL)
	if err != nil {
		return phase{}, err
	}
	start := time.Now()
	if err := load(); err != nil {
		return phase{}, err
	}
	stored1, lastWrite, err := settle(m.metricsURL)
	if err != nil {
		return phase{}, err
	}
	cpu1, err := cpuSeconds(m.pid)
	if err != nil {
		return phase{}, err
	}
	p := phase{spans: stored1 - stored0, elapsed: lastWrite.Sub(start), cpu: cpu1 - cpu0}
	if p.spans <= 0 {
		return p, errors.New("spoor stored no spans")
	}
	return p, nil
}

func (p phase) print() {
	fmt.Printf("  spans stored                 %12.0f\n", p.spans)
	fmt.Printf("  stored spans/s               %12.0f\n", p.spans/p.elapsed.Seconds())
	fmt.Printf("  spoor CPU s per 1M spans     %12.2f   (target ≤ 8; Jaeger v2 + Badger ≈ 20)\n", p.cpu/p.spans*1e6)
	fmt.Printf("  spoor CPU cores busy         %12.2f\n", p.cpu/p.elapsed.Seconds())
	fmt.Printf("  spans/s per spoor CPU core   %12.0f\n", p.spans/p.cpu)
}

func run(o options) error {
	dataDir, err := os.MkdirTemp("", "spoor-bench-data")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	addrs := map[string]string{}
	for _, k := range []string{"SPOOR_OTLP_GRPC_ENDPOINT", "SPOOR_OTLP_HTTP_ENDPOINT", "SPOOR_ZIPKIN_ENDPOINT", "SPOOR_QUERY_ENDPOINT",
		"SPOOR_METRICS_ENDPOINT", "SPOOR_SAMPLING_ENDPOINT", "SPOOR_SAMPLING_GRPC_ENDPOINT"} {
		a, err := proc.FreeAddr()
		if err != nil {
			return fmt.Errorf("pick port: %w", err)
		}
		addrs[k] = a
	}
	cmd := exec.Command(o.spoor)
	if o.spoorConfig != "" {
		cmd.Args = append(cmd.Args, "--config", o.spoorConfig)
	}
	cmd.Env = append(os.Environ(), "SPOOR_DATA_DIR="+dataDir)
	for k, v := range addrs {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logf, err := os.CreateTemp("", "spoor-bench-*.log")
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start spoor: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	query := "http://" + addrs["SPOOR_QUERY_ENDPOINT"]
	if err := proc.WaitHealthy(query+"/healthz", 60*time.Second); err != nil {
		return fmt.Errorf("%w (spoor log: %s)", err, logf.Name())
	}
	metricsURL := "http://" + addrs["SPOOR_METRICS_ENDPOINT"] + "/metrics"
	pid := cmd.Process.Pid

	m := meter{pid: pid, metricsURL: metricsURL}
	mem := watchMemory(pid)
	tg, err := m.measure(func() error {
		gen := exec.Command(o.telemetrygen, "traces",
			"--otlp-endpoint", addrs["SPOOR_OTLP_GRPC_ENDPOINT"], "--otlp-insecure",
			"--workers", strconv.Itoa(o.workers), "--rate", strconv.FormatFloat(o.rate, 'f', -1, 64), "--duration", o.duration.String(),
			"--child-spans", strconv.Itoa(o.childSpans), "--batch-size", "512",
			"--allow-export-failures", "--service", "bench")
		for i := 0; i < 10; i++ {
			gen.Args = append(gen.Args, "--telemetry-attributes", fmt.Sprintf("attr%d=\"value-%d\"", i, i))
		}
		gen.Stdout, gen.Stderr = io.Discard, io.Discard
		if err := gen.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				return fmt.Errorf("run telemetrygen: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w (spoor log: %s)", err, logf.Name())
	}
	if o.profileURL != "" {
		go func() {
			time.Sleep(5 * time.Second)
			if err := fetchProfile(o.profileURL+"/debug/pprof/profile?seconds=20", "replay.prof"); err != nil {
				fmt.Fprintln(os.Stderr, "bench: profile:", err)
			}
		}()
	}
	rp, err := m.measure(func() error {
		return replay(addrs["SPOOR_OTLP_GRPC_ENDPOINT"], o.replayStreams, o.duration, o.childSpans+1)
	})
	if err != nil {
		return fmt.Errorf("%w (spoor log: %s)", err, logf.Name())
	}
	peakRSS, err := peakRSSBytes(pid)
	if err != nil {
		return err
	}
	spans := tg.spans + rp.spans

	lat, err := traceByIDLatencies(query, o.lookups)
	if err != nil {
		return err
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if _, err := cmd.Process.Wait(); err != nil {
		return err
	}
	disk, err := diskusage.Of(dataDir)
	if err != nil {
		return err
	}

	fmt.Printf("spoor end-to-end benchmark (%d CPUs; figures counted on spoor's side: spans committed by its store)\n", numCPU())
	fmt.Printf("phase 1: telemetrygen v0.161.0 → OTLP gRPC, %d workers × %g traces/s, %d child spans, 10 span attributes, %v\n",
		o.workers, o.rate, o.childSpans, o.duration)
	tg.print()
	fmt.Printf("phase 2: in-process OTLP gRPC replayer (telemetrygen-shaped 512-span requests, fresh random trace IDs), %d streams, %v\n",
		o.replayStreams, o.duration)
	rp.print()
	fmt.Printf("whole run\n")
	anon, file := mem.peaks()
	fmt.Printf("  spoor peak RSS               %9.0f MiB   (peaks sampled every 250 ms: anonymous %0.0f MiB — heap, Badger tables and caches; file-backed %0.0f MiB — Badger's memory-mapped files, page cache the kernel can reclaim)\n",
		float64(peakRSS)/(1<<20), float64(anon)/(1<<20), float64(file)/(1<<20))
	fmt.Printf("  bytes on disk per span       %12.1f   (%0.1f MiB total)\n", float64(disk)/spans, float64(disk)/(1<<20))
	fmt.Printf("  trace by ID p50 / p99        %8.2f ms / %.2f ms   (%d random stored traces)\n",
		ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), len(lat))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func numCPU() int {
	n := 0
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "processor") {
			n++
		}
	}
	return n
}

// cpuSeconds reads the process's user+system CPU time from /proc.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

func peakRSSBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

var sentSpansRe = regexp.MustCompile(`(?m)^otelcol_exporter_sent_spans(?:_total)?\{[^}]*exporter="spoor_storage"[^}]*\} ([0-9.e+]+)$`)

// storedSpans is the number of spans the storage exporter committed.
func storedSpans(url string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, m := range sentSpansRe.FindAllStringSubmatch(string(b), -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, nil
}

// settle waits until the stored count stops moving and returns it with the time it
// last moved.
func settle(url string) (float64, time.Time, error) {
	last, lastChange := -1.0, time.Now()
	for {
		n, err := storedSpans(url)
		if err != nil {
			return 0, time.Time{}, err
		}
		if n == last {
			return n, lastChange, nil
		}
		last, lastChange = n, time.Now()
		time.Sleep(500 * time.Millisecond)
	}
}

type envelope struct {
	Data []struct {
		TraceID string `json:"traceID"`
	} `json:"data"`
}

// traceByIDLatencies fetches n random stored traces by ID, sequentially, and returns
// the sorted latencies.
func traceByIDLatencies(query string, n int) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids, err := traceIDs(ctx, query, n)
	if err != nil {
		return nil, err
	}
	client := &http.Client{}
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		id := ids[rand.IntN(len(ids))]
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, query+"/api/traces/"+id, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("get trace %s: %w", id, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("get trace %s: status %d", id, resp.StatusCode)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, nil
}

// traceIDs collects up to n stored trace IDs through the search API.
func traceIDs(ctx context.Context, query string, n int) ([]string, error) {
	url := fmt.Sprintf("%s/api/traces?service=bench&limit=%d&start=%d", query, n, time.Now().Add(-time.Hour).UnixMicro())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("search traces: %w", err)
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return nil, fmt.Errorf("decode search: %w", err)
	}
	ids := make([]string, 0, len(env.Data))
	for _, d := range env.Data {
		ids = append(ids, d.TraceID)
	}
	if len(ids) == 0 {
		return nil, errors.New("search found no stored traces")
	}
	return ids, nil
}

func fetchProfile(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
