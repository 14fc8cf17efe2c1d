package analytics

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// Type is the processor's type in a collector config.
var Type = component.MustNewType("spoor_analytics")

// NewFactory returns the spoor_analytics processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(Type, func() component.Config { return createDefaultConfig() },
		processor.WithTraces(createTraces, component.StabilityLevelDevelopment))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	t, _, err := newTraces(ctx, set, cfg.(*Config), next)
	return t, err
}

func newTraces(ctx context.Context, set processor.Settings, cfg *Config, next consumer.Traces) (processor.Traces, *analyticsProcessor, error) {
	p, err := newProcessor(cfg, set.TelemetrySettings)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s processor: %w", Type, err)
	}
	t, err := processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown))
	if err != nil {
		return nil, nil, fmt.Errorf("create %s processor: %w", Type, err)
	}
	return t, p, nil
}
