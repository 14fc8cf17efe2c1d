package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/spoortrace/spoor/sampler/remote"
)

// samplingConfig resolves the embedded default config and returns the sampling
// strategies extension's settings, checking that the extension is enabled.
func samplingConfig(t *testing.T) *remote.Config {
	t.Helper()
	t.Setenv("SPOOR_METRICS_HOST", "127.0.0.1")
	t.Setenv("SPOOR_METRICS_PORT", "8888")
	t.Setenv("SPOOR_METRICS_INTERNAL_PORT", "18888")
	set := collectorSettings(true)
	provider, err := otelcol.NewConfigProvider(set.ConfigProviderSettings)
	if err != nil {
		t.Fatalf("config provider: %v", err)
	}
	factories, err := components()
	if err != nil {
		t.Fatalf("components: %v", err)
	}
	cfg, err := provider.Get(context.Background(), factories)
	if err != nil {
		t.Fatalf("resolve default config: %v", err)
	}
	if err := confmap.Validate(cfg); err != nil {
		t.Fatalf("validate default config: %v", err)
	}
	id := component.NewID(remote.Type)
	enabled := false
	for _, e := range cfg.Service.Extensions {
		enabled = enabled || e == id
	}
	if !enabled {
		t.Errorf("%s is not in service.extensions: %v", id, cfg.Service.Extensions)
	}
	sc, ok := cfg.Extensions[id].(*remote.Config)
	if !ok {
		t.Fatalf("no %s extension config in the default config", id)
	}
	return sc
}

func TestDefaultConfigSamplingStrategies(t *testing.T) {
	for _, k := range []string{"SPOOR_SAMPLING_ENDPOINT", "SPOOR_SAMPLING_GRPC_ENDPOINT", "SPOOR_SAMPLING_STRATEGIES_FILE", "SPOOR_SAMPLING_PERCENTAGE"} {
		t.Setenv(k, "") // restored when the test ends
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	sc := samplingConfig(t)
	if sc.ServerConfig.NetAddr.Endpoint != "localhost:5778" || sc.GRPCEndpoint != "localhost:5779" || sc.StrategiesFile != "" || sc.DefaultSamplingPercentage != 100 {
		t.Errorf("defaults: endpoint %q, gRPC %q, file %q, percentage %v", sc.ServerConfig.NetAddr.Endpoint, sc.GRPCEndpoint, sc.StrategiesFile, sc.DefaultSamplingPercentage)
	}
	// Set and empty: gRPC off.
	t.Setenv("SPOOR_SAMPLING_GRPC_ENDPOINT", "")
	if sc := samplingConfig(t); sc.GRPCEndpoint != "" {
		t.Errorf("SPOOR_SAMPLING_GRPC_ENDPOINT empty: gRPC on %q, want off", sc.GRPCEndpoint)
	}
	t.Setenv("SPOOR_SAMPLING_GRPC_ENDPOINT", "127.0.0.1:15779")
	if sc := samplingConfig(t); sc.GRPCEndpoint != "127.0.0.1:15779" {
		t.Errorf("SPOOR_SAMPLING_GRPC_ENDPOINT: gRPC on %q, want 127.0.0.1:15779", sc.GRPCEndpoint)
	}

	// Validation reads the file: it must exist and be valid.
	file := filepath.Join(t.TempDir(), "strategies.json")
	if err := os.WriteFile(file, []byte(`{"default_strategy":{"type":"probabilistic","param":0.5}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPOOR_SAMPLING_ENDPOINT", "127.0.0.1:15778")
	t.Setenv("SPOOR_SAMPLING_STRATEGIES_FILE", file)
	t.Setenv("SPOOR_SAMPLING_PERCENTAGE", "12.5")
	sc = samplingConfig(t)
	if sc.ServerConfig.NetAddr.Endpoint != "127.0.0.1:15778" || sc.StrategiesFile != file || sc.DefaultSamplingPercentage != 12.5 {
		t.Errorf("from the environment: endpoint %q, file %q, percentage %v", sc.ServerConfig.NetAddr.Endpoint, sc.StrategiesFile, sc.DefaultSamplingPercentage)
	}
}

// `spoor validate` checks the strategies file named by SPOOR_SAMPLING_STRATEGIES_FILE and
// the sampler's config, failing with the file and the reason (the line for JSON errors).
func TestValidateCommand(t *testing.T) {
	t.Setenv("SPOOR_METRICS_HOST", "127.0.0.1")
	t.Setenv("SPOOR_METRICS_PORT", "8888")
	t.Setenv("SPOOR_METRICS_INTERNAL_PORT", "18888")
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.json", `{"default_strategy":{"type":"probabilistic","param":0.5}}`)
	syntax := write("syntax.json", "{\"default_strategy\":{\n  \"type\":\"probabilistic\",\n  \"param\":0.5,,\n}}")
	rate := write("rate.json", `{"service_strategies":[{"service":"a","type":"ratelimiting","param":40000}]}`)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // "" for success
	}{
		{"default", nil, nil, nil},
		{"good file", map[string]string{"SPOOR_SAMPLING_STRATEGIES_FILE": good}, nil, nil},
		{"syntax error", map[string]string{"SPOOR_SAMPLING_STRATEGIES_FILE": syntax}, nil,
			[]string{"spoor_sampling_strategies", syntax, "line 3, column 15", "invalid character ','"}},
		{"bad rate", map[string]string{"SPOOR_SAMPLING_STRATEGIES_FILE": rate}, nil,
			[]string{rate, `service_strategies[0] (service "a")`, "between 0 and 32767"}},
		{"missing file", map[string]string{"SPOOR_SAMPLING_STRATEGIES_FILE": filepath.Join(dir, "none.json")}, nil,
			[]string{"none.json", "no such file"}},
		{"bad percentage", map[string]string{"SPOOR_SAMPLING_PERCENTAGE": "150"}, nil,
			[]string{"processors::spoor_sampler: sampling_percentage 150: want 0 to 100"}},
		{"bad mode", nil, []string{"--set", "processors::spoor_sampler::mode=random"},
			[]string{"processors::spoor_sampler", `mode "random"`}},
		{"bad tail", nil, []string{"--set", "processors::spoor_sampler::tail::policies::errors=false"},
			[]string{"tail: enabled without any policy"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"SPOOR_SAMPLING_STRATEGIES_FILE", "SPOOR_SAMPLING_PERCENTAGE"} {
				t.Setenv(k, c.env[k])
				if c.env[k] == "" {
					if err := os.Unsetenv(k); err != nil {
						t.Fatal(err)
					}
				}
			}
			cmd := newRootCommand(append([]string{"validate"}, c.args...))
			cmd.SetOut(new(strings.Builder))
			cmd.SetErr(new(strings.Builder))
			err := cmd.Execute()
			if c.want == nil {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate passed, want an error naming %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
