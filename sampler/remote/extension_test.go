package remote

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

type testServer struct {
	ext    *Extension
	url    string
	reader *sdkmetric.ManualReader
}

// startTestServer starts the extension on a port the kernel picks on 127.0.0.1.
func startTestServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	reader := sdkmetric.NewManualReader()
	ts := componenttest.NewNopTelemetrySettings()
	ts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ext, err := newExtension(cfg, ts)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := ext.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testServer{ext: ext, url: "http://" + ext.addr, reader: reader}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	status, body := get(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, status, body)
	}
	return body
}

// counter returns a counter's value for the attributes given as "key=value".
func (s *testServer) counter(t *testing.T, name string, attrs ...string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect metrics: %v", err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
		points:
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				for _, a := range attrs {
					k, v, _ := strings.Cut(a, "=")
					if got, ok := dp.Attributes.Value(attributeKey(k)); !ok || got.AsString() != v {
						continue points
					}
				}
				total += dp.Value
			}
		}
	}
	return total
}

func TestServeDefaultWithoutFile(t *testing.T) {
	s := startTestServer(t, func(c *Config) { c.DefaultSamplingPercentage = 80 })
	want := `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.8}}`
	for _, path := range []string{"/?service=checkout", "/sampling?service=checkout", "/sampling?service=other&unrelated=1"} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != want {
			t.Errorf("GET %s: %d %s, want 200 %s", path, resp.StatusCode, b, want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
}

func TestServeFile(t *testing.T) {
	s := startTestServer(t, func(c *Config) { c.StrategiesFile = "testdata/strategies.json" })
	for service, want := range fixtureBodies {
		for _, path := range []string{"/?service=", "/sampling?service="} {
			if got := mustGet(t, s.url+path+service); got != want {
				t.Errorf("GET %s%s:\n got %s\nwant %s", path, service, got, want)
			}
		}
	}
}

func TestServeNumericStrategyType(t *testing.T) {
	s := startTestServer(t, func(c *Config) {
		c.StrategiesFile = "testdata/strategies.json"
		c.NumericStrategyType = true
	})
	if got, want := mustGet(t, s.url+"/sampling?service=bar"), `{"strategyType":1,"rateLimitingSampling":{"maxTracesPerSecond":5}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestBadRequests(t *testing.T) {
	s := startTestServer(t, nil)
	cases := []struct {
		method, path string
		status       int
		reason       string
	}{
		{"GET", "/", 400, "'service' parameter must appear exactly once"},
		{"GET", "/sampling", 400, "'service' parameter must appear exactly once"},
		{"GET", "/sampling?service=a&service=b", 400, "'service' parameter must appear exactly once"},
		{"GET", "/?service=a&service=a", 400, "'service' parameter must appear exactly once"},
		{"GET", "/?service=", 400, "'service' parameter must not be empty"},
		{"GET", "/?service=%zz", 400, "malformed query string"},
		{"GET", "/?service=a;b", 400, "malformed query string"},
		{"GET", "/?service=" + strings.Repeat("x", 1100), 414, "query string longer than 1024 bytes"},
		{"POST", "/sampling?service=a", 405, "method POST not allowed: use GET"},
		{"PUT", "/?service=a", 405, "method PUT not allowed"},
		{"GET", "/api/sampling?service=a", 404, "not found"},
		{"GET", "/sampling/?service=a", 404, "not found"},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, s.url+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.reason) {
			t.Errorf("%s %.60s: %d %q, want %d with %q", c.method, c.path, resp.StatusCode, b, c.status, c.reason)
		}
		if c.status == 405 && resp.Header.Get("Allow") != "GET" {
			t.Errorf("%s %s: Allow %q, want GET", c.method, c.path, resp.Header.Get("Allow"))
		}
	}
	if got := s.counter(t, "spoor_sampling_strategy_requests", "result=bad_request"); got != 7 {
		t.Errorf("bad_request count %d, want 7", got)
	}
	if got := s.counter(t, "spoor_sampling_strategy_requests", "result=method_not_allowed"); got != 2 {
		t.Errorf("method_not_allowed count %d, want 2", got)
	}
	if got := s.counter(t, "spoor_sampling_strategy_requests", "result=query_too_long"); got != 1 {
		t.Errorf("query_too_long count %d, want 1", got)
	}
	if got := s.counter(t, "spoor_sampling_strategy_requests", "result=not_found"); got != 2 {
		t.Errorf("not_found count %d, want 2", got)
	}
}

func TestRequestsMetricByService(t *testing.T) {
	s := startTestServer(t, nil)
	for range 3 {
		mustGet(t, s.url+"/?service=checkout")
	}
	mustGet(t, s.url+"/sampling?service=ledger")
	for i := range maxServiceLabels + 10 {
		mustGet(t, s.url+"/?service=svc-"+strings.Repeat("x", i%7)+itoa(i))
	}
	if got := s.counter(t, "spoor_sampling_strategy_requests", "service=checkout", "result=ok"); got != 3 {
		t.Errorf("checkout ok %d, want 3", got)
	}
	if got := s.counter(t, "spoor_sampling_strategy_requests", "service=ledger", "result=ok"); got != 1 {
		t.Errorf("ledger ok %d, want 1", got)
	}
	// 2 labels taken by checkout and ledger, the rest of the cap by svc-*, 12 past it.
	if got := s.counter(t, "spoor_sampling_strategy_requests", "service="+otherServiceLabel, "result=ok"); got != 12 {
		t.Errorf("%s ok %d, want 12", otherServiceLabel, got)
	}
	if got := s.counter(t, "spoor_sampling_strategy_requests", "result=ok"); got != int64(4+maxServiceLabels+10) {
		t.Errorf("ok total %d, want %d", got, 4+maxServiceLabels+10)
	}
}

func writeFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// A distinct modification time for each version, whatever the file system's clock granularity.
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReloadKeepsLastGoodFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strategies.json")
	base := time.Now().Add(-time.Hour)
	writeFile(t, path, `{"service_strategies":[{"service":"pay","type":"probabilistic","param":0.25}]}`, base)
	s := startTestServer(t, func(c *Config) {
		c.StrategiesFile = path
		c.ReloadInterval = 10 * time.Millisecond
	})
	v1 := `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.25}}`
	if got := mustGet(t, s.url+"/?service=pay"); got != v1 {
		t.Fatalf("before reload: %s", got)
	}

	// A good edit is served.
	writeFile(t, path, `{"service_strategies":[{"service":"pay","type":"ratelimiting","param":9}]}`, base.Add(time.Second))
	v2 := `{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":9}}`
	waitFor(t, "the edit to be served", func() bool { return mustGet(t, s.url+"/?service=pay") == v2 })
	if got := s.counter(t, "spoor_sampling_strategy_file_reloads", "result=ok"); got != 1 {
		t.Errorf("ok reloads %d, want 1", got)
	}

	// A bad edit is refused, once, and the last good version stays.
	writeFile(t, path, `{"service_strategies":[{"service":"pay","type":"ratelimiting","param":40000}]}`, base.Add(2*time.Second))
	waitFor(t, "the bad edit to be refused", func() bool {
		return s.counter(t, "spoor_sampling_strategy_file_reloads", "result=error") == 1
	})
	time.Sleep(50 * time.Millisecond) // several more polls of the same bad version
	if got := s.counter(t, "spoor_sampling_strategy_file_reloads", "result=error"); got != 1 {
		t.Errorf("error reloads %d after more polls, want 1 (one per version)", got)
	}
	if got := mustGet(t, s.url+"/?service=pay"); got != v2 {
		t.Errorf("after a bad edit: %s, want the last good %s", got, v2)
	}

	// The file removed: still the last good version.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the missing file to be noticed", func() bool {
		return s.counter(t, "spoor_sampling_strategy_file_reloads", "result=error") == 2
	})
	if got := mustGet(t, s.url+"/?service=pay"); got != v2 {
		t.Errorf("after removal: %s, want the last good %s", got, v2)
	}

	// Fixed: served again.
	writeFile(t, path, `{"default_strategy":{"type":"probabilistic","param":0.5}}`, base.Add(3*time.Second))
	v3 := `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.5}}`
	waitFor(t, "the fixed file to be served", func() bool { return mustGet(t, s.url+"/?service=pay") == v3 })
}

func TestStartRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"default_strategy":{"type":"probabilistic","param":1.2}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		bad:                             "default_strategy: probabilistic param is a probability between 0 and 1, got 1.2",
		filepath.Join(dir, "none.json"): "open sampling strategies file",
	} {
		cfg := createDefaultConfig().(*Config)
		cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
		cfg.StrategiesFile = file
		ext, err := newExtension(cfg, componenttest.NewNopTelemetrySettings())
		if err != nil {
			t.Fatal(err)
		}
		err = ext.Start(context.Background(), componenttest.NewNopHost())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("start with %s: %v, want an error with %q", file, err, want)
		}
		if err := ext.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown after failed start: %v", err)
		}
	}
}

func TestStartRefusesBusyPort(t *testing.T) {
	s := startTestServer(t, nil)
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = s.ext.addr
	ext, err := newExtension(cfg, componenttest.NewNopTelemetrySettings())
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err == nil || !strings.Contains(err.Error(), "listen for sampling strategy requests") {
		t.Errorf("start on a busy port: %v", err)
	}
}

func TestShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.StrategiesFile = "testdata/strategies.json"
	cfg.ReloadInterval = time.Millisecond
	ext, err := newExtension(cfg, componenttest.NewNopTelemetrySettings())
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown without start: %v", err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err == nil {
		t.Error("second start succeeded")
	}
	addr := ext.addr
	mustGet(t, "http://"+addr+"/?service=foo")
	http.DefaultClient.CloseIdleConnections()
	for i := range 2 {
		if err := ext.Shutdown(context.Background()); err != nil {
			t.Fatalf("shutdown %d: %v", i+1, err)
		}
	}
	if _, err := http.Get("http://" + addr + "/?service=foo"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.ServerConfig.NetAddr.Endpoint = "" }, "endpoint must be set"},
		{func(c *Config) { c.ReloadInterval = -time.Second }, "reload_interval must not be negative"},
		{func(c *Config) { c.DefaultSamplingPercentage = 100.5 }, "default_sampling_percentage must be between 0 and 100"},
		{func(c *Config) { c.DefaultSamplingPercentage = -1 }, "default_sampling_percentage must be between 0 and 100"},
		{func(c *Config) { c.GRPCEndpoint = "5779" }, `grpc_endpoint "5779" is not host:port`},
		{func(c *Config) { c.GRPCEndpoint = "localhost:5778" }, "is also the HTTP endpoint"},
	}
	for _, c := range cases {
		cfg := createDefaultConfig().(*Config)
		c.edit(cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("validate: %v, want %q", err, c.want)
		}
	}
	cfg := createDefaultConfig().(*Config)
	if err := cfg.Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	if cfg.ServerConfig.NetAddr.Endpoint != "localhost:5778" || cfg.DefaultSamplingPercentage != 100 || cfg.StrategiesFile != "" {
		t.Errorf("default config %+v", cfg)
	}
}

func attributeKey(k string) attribute.Key { return attribute.Key(k) }

func itoa(i int) string { return strconv.Itoa(i) }

// Every key reaches Config through the collector's own decoding (confighttp's
// Unmarshal must not swallow the extension's keys).
func TestConfigUnmarshal(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	conf := confmap.NewFromStringMap(map[string]any{
		"endpoint":                    "127.0.0.1:1234",
		"grpc_endpoint":               "127.0.0.1:1235",
		"strategies_file":             "/etc/strategies.json",
		"reload_interval":             "30s",
		"default_sampling_percentage": 12.5,
		"numeric_strategy_type":       true,
	})
	if err := conf.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.ServerConfig.NetAddr.Endpoint != "127.0.0.1:1234" || cfg.GRPCEndpoint != "127.0.0.1:1235" || cfg.StrategiesFile != "/etc/strategies.json" ||
		cfg.ReloadInterval != 30*time.Second || cfg.DefaultSamplingPercentage != 12.5 || !cfg.NumericStrategyType {
		t.Errorf("unmarshalled %+v", cfg)
	}
}
