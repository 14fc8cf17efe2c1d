package main

import (
	"context"
	"os"
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
	for _, k := range []string{"SPOOR_SAMPLING_ENDPOINT", "SPOOR_SAMPLING_STRATEGIES_FILE", "SPOOR_SAMPLING_PERCENTAGE"} {
		t.Setenv(k, "") // restored when the test ends
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	sc := samplingConfig(t)
	if sc.ServerConfig.NetAddr.Endpoint != "localhost:5778" || sc.StrategiesFile != "" || sc.DefaultSamplingPercentage != 100 {
		t.Errorf("defaults: endpoint %q, file %q, percentage %v", sc.ServerConfig.NetAddr.Endpoint, sc.StrategiesFile, sc.DefaultSamplingPercentage)
	}

	t.Setenv("SPOOR_SAMPLING_ENDPOINT", "127.0.0.1:15778")
	t.Setenv("SPOOR_SAMPLING_STRATEGIES_FILE", "/etc/spoor/strategies.json")
	t.Setenv("SPOOR_SAMPLING_PERCENTAGE", "12.5")
	sc = samplingConfig(t)
	if sc.ServerConfig.NetAddr.Endpoint != "127.0.0.1:15778" || sc.StrategiesFile != "/etc/spoor/strategies.json" || sc.DefaultSamplingPercentage != 12.5 {
		t.Errorf("from the environment: endpoint %q, file %q, percentage %v", sc.ServerConfig.NetAddr.Endpoint, sc.StrategiesFile, sc.DefaultSamplingPercentage)
	}
}
