package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func getBody(t *testing.T, url string) (int, string) {
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

// TestSamplingStrategies checks that the binary serves Jaeger remote sampling
// strategies on SPOOR_SAMPLING_ENDPOINT: the head sampler's percentage without a file,
// a strategies file's when SPOOR_SAMPLING_STRATEGIES_FILE names one.
func TestSamplingStrategies(t *testing.T) {
	t.Parallel()
	s := startSpoor(t, t.TempDir(), "SPOOR_SAMPLING_PERCENTAGE=25")
	want := `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.25}}`
	for _, path := range []string{"/sampling?service=x", "/?service=x"} {
		if status, body := getBody(t, "http://"+s.ep.Sampling+path); status != http.StatusOK || body != want {
			t.Errorf("GET %s: %d %s, want 200 %s", path, status, body, want)
		}
	}
	if status, body := getBody(t, "http://"+s.ep.Sampling+"/sampling"); status != http.StatusBadRequest || !strings.Contains(body, "'service' parameter") {
		t.Errorf("GET /sampling without service: %d %s, want 400 with a reason", status, body)
	}
	if m := s.metrics(); !strings.Contains(m, "spoor_sampling_strategy_requests") {
		t.Errorf("/metrics lacks spoor_sampling_strategy_requests")
	}
	s.stop()

	file := filepath.Join(t.TempDir(), "strategies.json")
	if err := writeFile(file, `{"default_strategy":{"type":"probabilistic","param":0.5},
		"service_strategies":[{"service":"x","type":"ratelimiting","param":42}]}`); err != nil {
		t.Fatal(err)
	}
	s = startSpoor(t, t.TempDir(), "SPOOR_SAMPLING_STRATEGIES_FILE="+file)
	for service, want := range map[string]string{
		"x": `{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":42}}`,
		"y": `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.5}}`,
	} {
		if status, body := getBody(t, "http://"+s.ep.Sampling+"/sampling?service="+service); status != http.StatusOK || body != want {
			t.Errorf("service %s: %d %s, want 200 %s", service, status, body, want)
		}
	}
	// The same strategies over gRPC on SPOOR_SAMPLING_GRPC_ENDPOINT, with Jaeger's client.
	conn, err := grpc.NewClient(s.ep.SamplingGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := api_v2.NewSamplingManagerClient(conn)
	for service, want := range map[string]string{
		"x": `strategyType:RATE_LIMITING rateLimitingSampling:<maxTracesPerSecond:42 > `,
		"y": `probabilisticSampling:<samplingRate:0.5 > `,
	} {
		resp, err := client.GetSamplingStrategy(ctxTimeout(t, 10*time.Second), &api_v2.SamplingStrategyParameters{ServiceName: service})
		if err != nil {
			t.Fatalf("gRPC GetSamplingStrategy(%s): %v", service, err)
		}
		if got := resp.String(); got != want {
			t.Errorf("gRPC service %s: %q, want %q", service, got, want)
		}
	}
}

// TestSamplingStrategiesBadFile checks that spoor refuses to start on an invalid
// strategies file, saying why.
func TestSamplingStrategiesBadFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "strategies.json")
	if err := writeFile(file, `{"default_strategy":{"type":"ratelimiting","param":40000}}`); err != nil {
		t.Fatal(err)
	}
	out := runSpoorUntilExit(t, "SPOOR_SAMPLING_STRATEGIES_FILE="+file)
	if !strings.Contains(out, "ratelimiting param is whole traces per second between 0 and 32767") {
		t.Errorf("spoor's output does not say why the file is bad:\n%s", out)
	}
}

// runSpoorUntilExit runs spoor on fresh ports with extraEnv, expects it to exit with an
// error within a minute, and returns its output.
func runSpoorUntilExit(t *testing.T, extraEnv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, spoorBin)
	cmd.Env = append(append(os.Environ(), freeEndpoints(t).env(t.TempDir())...), extraEnv...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("spoor still running after a minute:\n%s", out)
	}
	if err == nil {
		t.Fatalf("spoor exited cleanly, want an error:\n%s", out)
	}
	return string(out)
}

// TestValidateSamplingConfig runs `spoor validate` (the built binary): it checks the
// strategies file SPOOR_SAMPLING_STRATEGIES_FILE names and the sampler's config, exiting
// non-zero with the file and the reason (the line of a JSON error), and 0 on good ones.
func TestValidateSamplingConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	syntax := filepath.Join(dir, "syntax.json")
	if err := writeFile(good, `{"default_strategy":{"type":"probabilistic","param":0.5}}`); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(syntax, "{\"default_strategy\":{\n  \"type\": \"probabilistic\",\n  \"param\": 0.5\n}"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want []string // nil: exits 0
	}{
		{"good file", []string{"SPOOR_SAMPLING_STRATEGIES_FILE=" + good}, nil, nil},
		{"syntax error", []string{"SPOOR_SAMPLING_STRATEGIES_FILE=" + syntax}, nil, []string{syntax, "line 4, column 2: unexpected EOF"}},
		{"missing file", []string{"SPOOR_SAMPLING_STRATEGIES_FILE=" + filepath.Join(dir, "none.json")}, nil, []string{"none.json: no such file"}},
		{"sampler percentage", []string{"SPOOR_SAMPLING_PERCENTAGE=-5"}, nil, []string{"spoor_sampler: sampling_percentage -5: want 0 to 100"}},
		{"sampler regex", nil, []string{"--set", "processors::spoor_sampler::tail::policies::attributes=[{key: a, regex: '('}]"},
			[]string{"spoor_sampler", "tail.policies.attributes[0] (a) regex"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, spoorBin, append([]string{"validate"}, c.args...)...)
			cmd.Env = append(append(os.Environ(), freeEndpoints(t).env(t.TempDir())...), c.env...)
			out, err := cmd.CombinedOutput()
			if c.want == nil {
				if err != nil {
					t.Fatalf("spoor validate: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("spoor validate exited 0, want an error:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
		})
	}
}
