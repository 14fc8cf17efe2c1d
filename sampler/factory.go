package sampler

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// Type is the processor's type in a collector config.
var Type = component.MustNewType("spoor_sampler")

// NewFactory returns the spoor_sampler processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(Type, func() component.Config { return createDefaultConfig() },
		processor.WithTraces(createTraces, component.StabilityLevelDevelopment))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newHeadProcessor(cfg.(*Config), set.TelemetrySettings.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("create %s processor: %w", Type, err)
	}
	opts := []processorhelper.Option{processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true})}
	if p.tail != nil {
		opts = append(opts, processorhelper.WithStart(p.tail.start), processorhelper.WithShutdown(p.tail.shutdown))
	}
	t, err := processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces, opts...)
	if err != nil {
		return nil, fmt.Errorf("create %s processor: %w", Type, err)
	}
	return t, nil
}
