package remote

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"
)

// Type is the extension's type in the collector configuration.
var Type = component.MustNewType("spoor_sampling_strategies")

// NewFactory returns the factory of the sampling strategies extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(Type, createDefaultConfig, create, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "localhost:5778"
	return &Config{
		ServerConfig:              srv,
		ReloadInterval:            5 * time.Second,
		DefaultSamplingPercentage: 100,
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set.TelemetrySettings)
}
