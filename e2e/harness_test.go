package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoortrace/spoor/internal/proc"
)

// spoorBin is the binary under test, built once by TestMain.
var spoorBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "spoor-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	spoorBin = filepath.Join(dir, "spoor")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	args := []string{"build", "-o", spoorBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/spoor")...)
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build spoor:", err)
		return 1
	}
	return m.Run()
}

// endpoints are the loopback addresses one spoor process listens on.
type endpoints struct {
	OTLPGRPC, OTLPHTTP, Zipkin, Query, Metrics, Sampling, SamplingGRPC string
	// MetricsInternal is the collector's own Prometheus reader, which spoor_metrics
	// reads: spoor picks one itself when none is set, from the ephemeral range.
	MetricsInternal string
}

// freeEndpoints picks eight loopback addresses for one spoor process, with proc.FreeAddr:
// below the ephemeral range, so that no client connection takes one before spoor binds it.
func freeEndpoints(t testing.TB) endpoints {
	t.Helper()
	addrs := make([]string, 8)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	return endpoints{OTLPGRPC: addrs[0], OTLPHTTP: addrs[1], Zipkin: addrs[2], Query: addrs[3], Metrics: addrs[4], Sampling: addrs[5], SamplingGRPC: addrs[6], MetricsInternal: addrs[7]}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := proc.FreeAddr()
	if err != nil {
		t.Fatalf("pick a free port: %v", err)
	}
	return addr
}

func (ep endpoints) env(dataDir string) []string {
	return []string{
		"SPOOR_DATA_DIR=" + dataDir,
		"SPOOR_OTLP_GRPC_ENDPOINT=" + ep.OTLPGRPC,
		"SPOOR_OTLP_HTTP_ENDPOINT=" + ep.OTLPHTTP,
		"SPOOR_ZIPKIN_ENDPOINT=" + ep.Zipkin,
		"SPOOR_QUERY_ENDPOINT=" + ep.Query,
		"SPOOR_METRICS_ENDPOINT=" + ep.Metrics,
		"SPOOR_SAMPLING_ENDPOINT=" + ep.Sampling,
		"SPOOR_SAMPLING_GRPC_ENDPOINT=" + ep.SamplingGRPC,
		"SPOOR_METRICS_INTERNAL_PORT=" + ep.MetricsInternal[strings.LastIndexByte(ep.MetricsInternal, ':')+1:],
	}
}

// spoor is one running spoor process.
type spoor struct {
	t       *testing.T
	ep      endpoints
	dataDir string
	cmd     *exec.Cmd
	logs    *lockedBuffer
	exited  chan struct{}
	waitErr error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSpoor starts bin/spoor on fresh loopback ports with its default config and waits
// until /healthz answers 200. The process is killed when the test ends.
func startSpoor(t *testing.T, dataDir string, extraEnv ...string) *spoor {
	t.Helper()
	return startSpoorOn(t, freeEndpoints(t), dataDir, extraEnv...)
}

func startSpoorOn(t *testing.T, ep endpoints, dataDir string, extraEnv ...string) *spoor {
	t.Helper()
	return startSpoorArgs(t, ep, dataDir, nil, extraEnv...)
}

func startSpoorArgs(t *testing.T, ep endpoints, dataDir string, args []string, extraEnv ...string) *spoor {
	t.Helper()
	return startSpoorProbe(t, ep, dataDir, args, http.DefaultClient, "http://"+ep.Query+"/healthz", extraEnv...)
}

// startSpoorProbe starts spoor and waits until healthURL, fetched with client, answers
// 200 (a spoor serving TLS needs a client that trusts its certificate).
func startSpoorProbe(t *testing.T, ep endpoints, dataDir string, args []string, client *http.Client, healthURL string, extraEnv ...string) *spoor {
	t.Helper()
	return startSpoorVia(t, nil, ep, dataDir, args, client, healthURL, extraEnv...)
}

// startSpoorVia starts spoor through a wrapper command (wrapper, then spoor's path and
// args: e.g. an unshare that mounts a file system first and execs spoor, so that the
// process keeps spoor's PID), then waits as startSpoorProbe does.
func startSpoorVia(t *testing.T, wrapper []string, ep endpoints, dataDir string, args []string, client *http.Client, healthURL string, extraEnv ...string) *spoor {
	t.Helper()
	s := &spoor{t: t, ep: ep, dataDir: dataDir, logs: &lockedBuffer{}, exited: make(chan struct{})}
	argv := append(append(append([]string{}, wrapper...), spoorBin), args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = append(append(os.Environ(), ep.env(dataDir)...), extraEnv...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start spoor: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if strings.Contains(s.logs.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in spoor")
		}
		if t.Failed() {
			t.Logf("spoor logs:\n%s", s.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.exited:
			t.Fatalf("spoor exited during start (%v):\n%s", s.waitErr, s.logs.String())
		default:
		}
		resp, err := client.Get(healthURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("spoor not healthy after 60s:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends spoor with SIGTERM and waits for a clean exit.
func (s *spoor) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM spoor: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("spoor did not stop within 30s after SIGTERM:\n%s", s.logs.String())
	}
	if s.waitErr != nil {
		s.t.Fatalf("spoor exited with %v:\n%s", s.waitErr, s.logs.String())
	}
}

// kill ends spoor with SIGKILL, as a crash would.
func (s *spoor) kill() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// alive fails the test if spoor has exited.
func (s *spoor) alive() {
	s.t.Helper()
	select {
	case <-s.exited:
		s.t.Fatalf("spoor exited (%v):\n%s", s.waitErr, s.logs.String())
	default:
	}
}

// getJSON GETs a query API path and decodes the JSON answer into out.
func (s *spoor) getJSON(path string, out any) int {
	s.t.Helper()
	return getJSONWith(s.t, http.DefaultClient, "http://"+s.ep.Query+path, out)
}

func getJSONWith(t *testing.T, client *http.Client, url string, out any) int {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read GET %s: %v", url, err)
	}
	if out != nil && len(body) > 0 && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: decode %q: %v", url, body, err)
		}
	}
	return resp.StatusCode
}

// metrics returns the text of /metrics.
func (s *spoor) metrics() string {
	s.t.Helper()
	resp, err := http.Get("http://" + s.ep.Metrics + "/metrics")
	if err != nil {
		s.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read /metrics: %v", err)
	}
	return string(b)
}

// jaegerTrace is the Jaeger UI trace JSON (REFERENCE.md §1.2).
type jaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []jaegerSpan             `json:"spans"`
	Processes map[string]jaegerProcess `json:"processes"`
}

type jaegerSpan struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []jaegerRef `json:"references"`
	StartTime     int64       `json:"startTime"`
	Duration      int64       `json:"duration"`
	Tags          []jaegerKV  `json:"tags"`
	Logs          []jaegerLog `json:"logs"`
	ProcessID     string      `json:"processID"`
}

type jaegerRef struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type jaegerKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type jaegerLog struct {
	Timestamp int64      `json:"timestamp"`
	Fields    []jaegerKV `json:"fields"`
}

type jaegerProcess struct {
	ServiceName string     `json:"serviceName"`
	Tags        []jaegerKV `json:"tags"`
}

type jaegerEnvelope[T any] struct {
	Data   T   `json:"data"`
	Total  int `json:"total"`
	Errors []struct {
		Code    int    `json:"code"`
		Msg     string `json:"msg"`
		TraceID string `json:"traceID"`
	} `json:"errors"`
}

// trace fetches one trace through the Jaeger API, waiting up to wait for it to appear.
func (s *spoor) trace(traceID string, wait time.Duration) (jaegerTrace, bool) {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		var env jaegerEnvelope[[]jaegerTrace]
		code := s.getJSON("/api/traces/"+traceID, &env)
		if code == http.StatusOK && len(env.Data) == 1 {
			return env.Data[0], true
		}
		if time.Now().After(deadline) {
			return jaegerTrace{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (tr jaegerTrace) span(t *testing.T, spanID string) jaegerSpan {
	t.Helper()
	for _, sp := range tr.Spans {
		if sp.SpanID == spanID {
			return sp
		}
	}
	t.Fatalf("trace %s has no span %s (spans: %+v)", tr.TraceID, spanID, tr.Spans)
	return jaegerSpan{}
}

func tag(tags []jaegerKV, key string) (any, bool) {
	for _, kv := range tags {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
