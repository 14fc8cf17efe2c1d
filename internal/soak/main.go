// Command soak runs one spoor for a long time under `spoor demo` and telemetrygen and
// prints, at every interval, what would show a leak: RSS, goroutines, open files and
// bytes on disk, with the spans stored and refused so far. At the end it compares the
// second half of the run with the first and says what grew. `make soak` runs it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"github.com/spoortrace/spoor/internal/proc"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spoortrace/spoor/internal/diskusage"
)

type options struct {
	spoor, telemetrygen string
	duration, interval  time.Duration
	rate                float64
	workers             int
	demoRate            int
	memoryLimitMiB      int
}

func main() {
	var o options
	flag.StringVar(&o.spoor, "spoor", "bin/spoor", "spoor binary")
	flag.StringVar(&o.telemetrygen, "telemetrygen", "telemetrygen", "telemetrygen binary")
	flag.DurationVar(&o.duration, "duration", 30*time.Minute, "how long to run")
	flag.DurationVar(&o.interval, "interval", time.Minute, "how often to sample")
	flag.Float64Var(&o.rate, "rate", 100, "telemetrygen traces per second per worker (10 spans each)")
	flag.IntVar(&o.workers, "workers", 2, "telemetrygen workers")
	flag.IntVar(&o.demoRate, "demo-rate", 20, "spoor demo payment flows per second")
	flag.IntVar(&o.memoryLimitMiB, "memory-limit-mib", 512, "SPOOR_MEMORY_LIMIT_MIB")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type sample struct {
	at                           time.Duration
	rss, anon                    int64
	goroutines, fds              int
	disk                         int64
	stored, refused, forwardDrop float64
}

func run(o options) error {
	dataDir, err := os.MkdirTemp("", "spoor-soak-data")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	addrs := map[string]string{}
	for _, k := range []string{"SPOOR_OTLP_GRPC_ENDPOINT", "SPOOR_OTLP_HTTP_ENDPOINT", "SPOOR_ZIPKIN_ENDPOINT",
		"SPOOR_QUERY_ENDPOINT", "SPOOR_METRICS_ENDPOINT", "SPOOR_SAMPLING_ENDPOINT", "SPOOR_PPROF_ENDPOINT"} {
		a, err := proc.FreeAddr()
		if err != nil {
			return err
		}
		addrs[k] = a
	}
	env := append(os.Environ(), "SPOOR_DATA_DIR="+dataDir, fmt.Sprintf("SPOOR_MEMORY_LIMIT_MIB=%d", o.memoryLimitMiB))
	for k, v := range addrs {
		env = append(env, k+"="+v)
	}
	logf, err := os.CreateTemp("", "spoor-soak-*.log")
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(o.spoor)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start spoor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	if err := proc.WaitHealthy("http://"+addrs["SPOOR_QUERY_ENDPOINT"]+"/healthz", 60*time.Second); err != nil {
		return fmt.Errorf("%w (spoor log %s)", err, logf.Name())
	}

	// The load: the payment demo (OTLP and Zipkin, real SDKs) and telemetrygen.
	demo := exec.Command(o.spoor, "demo", "--rate", strconv.Itoa(o.demoRate), "--duration", o.duration.String())
	demo.Env, demo.Stdout, demo.Stderr = env, io.Discard, io.Discard
	gen := exec.Command(o.telemetrygen, "traces", "--otlp-endpoint", addrs["SPOOR_OTLP_GRPC_ENDPOINT"], "--otlp-insecure",
		"--workers", strconv.Itoa(o.workers), "--rate", strconv.FormatFloat(o.rate, 'f', -1, 64),
		"--duration", o.duration.String(), "--child-spans", "9", "--allow-export-failures", "--service", "soak")
	gen.Stdout, gen.Stderr = io.Discard, io.Discard
	for _, c := range []*exec.Cmd{demo, gen} {
		if err := c.Start(); err != nil {
			return fmt.Errorf("start %s: %w", c.Path, err)
		}
		defer func(c *exec.Cmd) { _ = c.Process.Kill(); _ = c.Wait() }(c)
	}

	fmt.Printf("spoor soak: %v, sampled every %v; load: spoor demo at %d flows/s + telemetrygen %d workers × %g traces/s × 10 spans; SPOOR_MEMORY_LIMIT_MIB=%d\n",
		o.duration, o.interval, o.demoRate, o.workers, o.rate, o.memoryLimitMiB)
	fmt.Printf("%8s %9s %9s %10s %9s %9s %12s %10s\n", "elapsed", "RSS MiB", "anon MiB", "goroutines", "open fds", "disk MiB", "spans stored", "refused")
	pid := cmd.Process.Pid
	start := time.Now()
	var samples []sample
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("spoor exited during the soak: %v (log %s)", err, logf.Name())
		case <-tick.C:
		}
		s, err := measure(pid, dataDir, addrs)
		if err != nil {
			return err
		}
		s.at = time.Since(start).Round(time.Second)
		samples = append(samples, s)
		fmt.Printf("%8v %9.0f %9.0f %10d %9d %9.1f %12.0f %10.0f\n", s.at, mib(s.rss), mib(s.anon), s.goroutines, s.fds,
			mib(s.disk), s.stored, s.refused)
		if time.Since(start) >= o.duration {
			break
		}
	}
	return verdict(samples)
}

// verdict compares the peaks of the run's second half with those of its first half
// (the first sample, warm-up, left out): a measure whose peak grew by more than a
// quarter, and by more than a floor that noise can reach, is reported as growing.
func verdict(samples []sample) error {
	if len(samples) < 5 {
		fmt.Println("too few samples for a verdict (run longer, or sample more often)")
		return nil
	}
	s := samples[1:]
	half := len(s) / 2
	peak := func(f func(sample) float64, part []sample) float64 {
		m := 0.0
		for _, x := range part {
			m = max(m, f(x))
		}
		return m
	}
	var grew []string
	for _, m := range []struct {
		name  string
		f     func(sample) float64
		floor float64
	}{
		// Anonymous memory: the heap, stacks, Badger's tables and caches. The rest of
		// RSS is Badger's memory-mapped files (the value log being written, up to its
		// file size, then the next one), page cache the kernel reclaims under pressure.
		{"anon RSS (MiB)", func(x sample) float64 { return mib(x.anon) }, 64},
		{"goroutines", func(x sample) float64 { return float64(x.goroutines) }, 50},
		{"open fds", func(x sample) float64 { return float64(x.fds) }, 20},
	} {
		a, b := peak(m.f, s[:half]), peak(m.f, s[half:])
		fmt.Printf("%-14s first half peak %8.0f, second half peak %8.0f\n", m.name, a, b)
		if b > a*1.25 && b-a > m.floor {
			grew = append(grew, m.name)
		}
	}
	fmt.Printf("%-14s first half peak %8.0f, second half peak %8.0f (not judged: includes Badger's mapped files)\n", "RSS (MiB)",
		peak(func(x sample) float64 { return mib(x.rss) }, s[:half]), peak(func(x sample) float64 { return mib(x.rss) }, s[half:]))
	first, last := s[0], s[len(s)-1]
	perSpan := 0.0
	if last.stored > first.stored {
		perSpan = float64(last.disk-first.disk) / (last.stored - first.stored)
	}
	fmt.Printf("disk         %0.1f → %0.1f MiB, %0.1f bytes per stored span (bounded by retention and max_disk_bytes, not by the soak)\n",
		mib(first.disk), mib(last.disk), perSpan)
	if len(grew) > 0 {
		return fmt.Errorf("grew during the soak: %s", strings.Join(grew, ", "))
	}
	fmt.Println("verdict: no measure grew without bound")
	return nil
}

func measure(pid int, dataDir string, addrs map[string]string) (sample, error) {
	var s sample
	m, err := proc.ReadMemory(pid)
	if err != nil {
		return s, err
	}
	s.rss, s.anon = m.RSS, m.Anon
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	if s.goroutines, err = goroutines("http://" + addrs["SPOOR_PPROF_ENDPOINT"] + "/debug/pprof/goroutine?debug=1"); err != nil {
		return s, err
	}
	if s.disk, err = diskusage.Of(dataDir); err != nil {
		return s, err
	}
	text, err := get("http://" + addrs["SPOOR_METRICS_ENDPOINT"] + "/metrics")
	if err != nil {
		return s, err
	}
	s.stored = metric(text, "spoor_storage_spans_written")
	s.refused = metric(text, "spoor_ingest_refused_spans") + metric(text, "spoor_storage_refused_spans")
	return s, nil
}

var goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)

func goroutines(url string) (int, error) {
	text, err := get(url)
	if err != nil {
		return 0, err
	}
	m := goroutineTotal.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("no goroutine total in %s", url)
	}
	return strconv.Atoi(m[1])
}

// metric sums a metric's samples in Prometheus text.
func metric(text, name string) float64 {
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func get(url string) (string, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
