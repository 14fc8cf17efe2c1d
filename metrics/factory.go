package metrics

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// Type is the extension's type in a collector config.
var Type = component.MustNewType("spoor_metrics")

// NewFactory returns the spoor_metrics extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(Type, func() component.Config { return createDefaultConfig() },
		func(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
			return newExtension(cfg.(*Config), set.TelemetrySettings), nil
		}, component.StabilityLevelDevelopment)
}
