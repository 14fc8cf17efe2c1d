package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pipeline"

	"github.com/spoortrace/spoor/analytics"
	"github.com/spoortrace/spoor/sampler"
)

func resolveDefault(t *testing.T) (*otelcol.Config, error) {
	t.Helper()
	t.Setenv("SPOOR_METRICS_HOST", "127.0.0.1")
	t.Setenv("SPOOR_METRICS_PORT", "8888")
	t.Setenv("SPOOR_METRICS_INTERNAL_PORT", "18888")
	provider, err := otelcol.NewConfigProvider(collectorSettings(true).ConfigProviderSettings)
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
	return cfg, confmap.Validate(cfg)
}

// TestDefaultConfigAnalytics: spoor_analytics sees spans before the sampler, writes to
// the store, and takes its rules file, webhook and UI address from the environment,
// empty by default.
func TestDefaultConfigAnalytics(t *testing.T) {
	for _, k := range []string{"SPOOR_ALERT_RULES", "SPOOR_ALERT_WEBHOOK", "SPOOR_QUERY_ENDPOINT"} {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := resolveDefault(t)
	if err != nil {
		t.Fatalf("validate default config: %v", err)
	}
	procs := cfg.Service.Pipelines[pipeline.NewID(pipeline.SignalTraces)].Processors
	a, s := slices.Index(procs, component.NewID(analytics.Type)), slices.Index(procs, component.NewID(sampler.Type))
	if a < 0 || s < 0 || a > s {
		t.Fatalf("processors %v: spoor_analytics must come before spoor_sampler", procs)
	}
	ac := cfg.Processors[component.NewID(analytics.Type)].(*analytics.Config)
	if ac.Storage.String() != "spoor_storage" || ac.Alerts.RulesFile != "" || ac.Alerts.Webhook != "" || ac.Alerts.UIURL != "localhost:16686" {
		t.Errorf("defaults: %+v", ac)
	}

	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        condition: error_count > 1\n        window: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPOOR_ALERT_RULES", rules)
	t.Setenv("SPOOR_ALERT_WEBHOOK", "http://127.0.0.1:9093/api/v2/alerts")
	t.Setenv("SPOOR_QUERY_ENDPOINT", "127.0.0.1:16000")
	cfg, err = resolveDefault(t)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	ac = cfg.Processors[component.NewID(analytics.Type)].(*analytics.Config)
	if ac.Alerts.RulesFile != rules || ac.Alerts.Webhook != "http://127.0.0.1:9093/api/v2/alerts" || ac.Alerts.UIURL != "127.0.0.1:16000" {
		t.Errorf("from the environment: %+v", ac.Alerts)
	}
	if err := os.WriteFile(rules, []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        condition: error_count >< 1\n        window: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveDefault(t); err == nil {
		t.Error("a bad rules file passed validation")
	}
}
