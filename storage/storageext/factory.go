package storageext

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// Type is the extension's type in the collector configuration.
var Type = component.MustNewType("spoor_storage")

// NewFactory returns the factory of the trace store extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(Type, createDefaultConfig, create, component.StabilityLevelDevelopment)
}

func createDefaultConfig() component.Config {
	return &Config{
		Directory:  "./data",
		Retention:  72 * time.Hour,
		SyncWrites: true,
		// The fallback graph of stores without the analytics stage.
		Dependencies: true,
		// Room for Badger's compactions and a retention pass beyond the mapped files.
		MinFreeDiskBytes: 64 << 20,
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set.TelemetrySettings), nil
}
