package main

import (
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/pipeline"

	"github.com/spoortrace/spoor/exporters/zipkinexporter"
)

// TestDefaultConfigForwarding resolves the default config with every SPOOR_FORWARD_*
// variable set and checks the wiring: the store pipeline also feeds the spoor_forward
// connector, whose pipeline ends in one exporter per destination, each with a
// persistent queue and a breaker of its own.
func TestDefaultConfigForwarding(t *testing.T) {
	t.Setenv(envForwardOTLPGRPC, "collector.example:4317")
	t.Setenv(envForwardOTLPHTTP, "http://collector.example:4318")
	t.Setenv(envForwardZipkin, "http://zipkin.example:9411")
	cfg, err := resolveDefaultConfig(t)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	main := cfg.Service.Pipelines[pipeline.NewID(pipeline.SignalTraces)]
	fwd := cfg.Service.Pipelines[pipeline.NewIDWithName(pipeline.SignalTraces, forwardName)]
	if main == nil || fwd == nil {
		t.Fatalf("pipelines: %v", cfg.Service.Pipelines)
	}
	if got := main.Exporters; len(got) != 2 || got[1] != component.MustNewID(forwardName) {
		t.Errorf("store pipeline exporters %v, want spoor_storage and spoor_forward", got)
	}
	if len(fwd.Exporters) != 3 {
		t.Errorf("forwarding pipeline exporters %v, want three", fwd.Exporters)
	}
	for _, id := range fwd.Exporters {
		if _, ok := cfg.Exporters[id]; !ok {
			t.Errorf("exporter %v not configured", id)
		}
	}
	zc := cfg.Exporters[component.MustNewIDWithName("zipkin", forwardName)].(*zipkinexporter.Config)
	if zc.ClientConfig.Endpoint != "http://zipkin.example:9411/api/v2/spans" {
		t.Errorf("zipkin endpoint %q", zc.ClientConfig.Endpoint)
	}
	if !zc.QueueConfig.HasValue() || zc.QueueConfig.Get().StorageID == nil || zc.QueueConfig.Get().StorageID.String() != forwardStorage {
		t.Errorf("zipkin queue is not persistent in %s", forwardStorage)
	}
	if zc.RetryConfig.MaxElapsedTime != 0 || !zc.RetryConfig.Enabled {
		t.Errorf("zipkin retry %+v, want enabled without an end", zc.RetryConfig)
	}
	hc := cfg.Exporters[component.MustNewIDWithName("otlp_http", forwardName)].(*otlphttpexporter.Config)
	if len(hc.ClientConfig.Middlewares) != 1 || hc.ClientConfig.Middlewares[0].ID.String() != "spoor_breaker/otlp_http" {
		t.Errorf("otlp_http middlewares %v, want its own breaker", hc.ClientConfig.Middlewares)
	}
}

// TestDefaultConfigNoForwarding: with no SPOOR_FORWARD_* variable the default config is
// the embedded one, byte for byte.
func TestDefaultConfigNoForwarding(t *testing.T) {
	if got := defaultConfigYAML(func(string) string { return "" }); got != defaultConfig {
		t.Error("default config changed without forwarding variables")
	}
}
