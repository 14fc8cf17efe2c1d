package exporters

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// ForwardType is the forwarding connector's type: an exporter of the store pipeline and
// the receiver of the forwarding pipeline.
var ForwardType = component.MustNewType("spoor_forward")

// ForwardConfig has no settings.
type ForwardConfig struct{}

// NewForwardFactory returns the factory of the forwarding connector.
func NewForwardFactory() connector.Factory {
	return connector.NewFactory(ForwardType, func() component.Config { return &ForwardConfig{} },
		connector.WithTracesToTraces(createForward, component.StabilityLevelDevelopment))
}

func createForward(_ context.Context, set connector.Settings, _ component.Config, next consumer.Traces) (connector.Traces, error) {
	m := set.TelemetrySettings.MeterProvider.Meter("github.com/spoortrace/spoor/exporters")
	dropped, err := m.Int64Counter("spoor_forward_dropped_spans",
		metric.WithDescription("Spans not handed to every forwarding exporter (queue full, queue storage failing); ingest and the store were not affected."))
	if err != nil {
		return nil, fmt.Errorf("create forward dropped counter: %w", err)
	}
	return &forwarder{next: next, dropped: dropped, logger: set.TelemetrySettings.Logger}, nil
}

// forwarder hands spans to the forwarding exporters' queues and swallows their errors:
// a forwarding problem must never become a refusal of the sender, who would then resend
// spans the store already holds. What could not be queued is counted and logged (at
// most every 10 s).
type forwarder struct {
	component.StartFunc
	component.ShutdownFunc
	next    consumer.Traces
	dropped metric.Int64Counter
	logger  *zap.Logger
	lastLog atomic.Int64
}

func (f *forwarder) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (f *forwarder) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if err := f.next.ConsumeTraces(ctx, td); err != nil {
		n := td.SpanCount()
		f.dropped.Add(ctx, int64(n))
		now := time.Now().UnixNano()
		if last := f.lastLog.Load(); now-last > int64(10*time.Second) && f.lastLog.CompareAndSwap(last, now) {
			f.logger.Warn("Spans not queued for forwarding; they are stored, but some destination will not get them",
				zap.Int("spans", n), zap.Error(err))
		}
	}
	return nil
}
