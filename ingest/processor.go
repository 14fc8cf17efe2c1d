package ingest

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ProcessorType is the door processor's type: it checks every span before anything
// else sees it, and refuses a request with invalid spans as a whole, with a reason.
var ProcessorType = component.MustNewType("spoor_ingest")

// ProcessorFactories returns the processors of the ingest stage.
func ProcessorFactories() []processor.Factory {
	return []processor.Factory{
		processor.NewFactory(ProcessorType, func() component.Config { return &ProcessorConfig{} },
			processor.WithTraces(createProcessor, component.StabilityLevelDevelopment)),
	}
}

// ProcessorConfig has no settings yet; limits on spans and attributes come with the
// resilience work.
type ProcessorConfig struct{}

func createProcessor(_ context.Context, set processor.Settings, _ component.Config, next consumer.Traces) (processor.Traces, error) {
	m := set.TelemetrySettings.MeterProvider.Meter("github.com/spoortrace/spoor/ingest")
	rejected, err := m.Int64Counter("spoor_ingest_rejected_spans",
		metric.WithDescription("Spans refused at the door as invalid, by reason."))
	if err != nil {
		return nil, fmt.Errorf("create rejected spans counter: %w", err)
	}
	return &validator{next: next, rejected: rejected}, nil
}

// validator refuses requests that hold spans no store can keep.
type validator struct {
	component.StartFunc
	component.ShutdownFunc
	next     consumer.Traces
	rejected metric.Int64Counter
}

func (v *validator) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// Reasons counted in spoor_ingest_rejected_spans.
var (
	reasonZeroTraceID = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "zero_trace_id")))
	reasonZeroSpanID  = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "zero_span_id")))
)

func (v *validator) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if err := v.check(ctx, td); err != nil {
		recordRejection(ctx, err.Error())
		return consumererror.NewPermanent(status.Error(codes.InvalidArgument, err.Error()))
	}
	if err := v.next.ConsumeTraces(ctx, td); err != nil {
		recordRejection(ctx, err.Error())
		return err
	}
	return nil
}

// check finds the first invalid span. A request is refused whole: accepting part of it
// would leave the sender unable to tell which spans to fix and resend.
func (v *validator) check(ctx context.Context, td ptrace.Traces) error {
	n := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				switch {
				case sp.TraceID().IsEmpty():
					v.rejected.Add(ctx, int64(td.SpanCount()), reasonZeroTraceID)
					return fmt.Errorf("span %d (%q) has an all-zero trace ID, which is invalid", n, sp.Name())
				case sp.SpanID().IsEmpty():
					v.rejected.Add(ctx, int64(td.SpanCount()), reasonZeroSpanID)
					return fmt.Errorf("span %d (%q) of trace %s has an all-zero span ID, which is invalid", n, sp.Name(), sp.TraceID())
				}
				n++
			}
		}
	}
	return nil
}
