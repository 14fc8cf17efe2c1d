package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spoortrace/spoor/internal/otlpbody"
)

// ProcessorType is the door processor's type: it checks every span before anything
// else sees it, and refuses a request with invalid spans as a whole, with a reason.
var ProcessorType = component.MustNewType("spoor_ingest")

// ProcessorFactories returns the processors of the ingest stage.
func ProcessorFactories() []processor.Factory {
	return []processor.Factory{
		processor.NewFactory(ProcessorType, func() component.Config {
			return &ProcessorConfig{RetryAfter: time.Second, Limits: defaultLimits()}
		},
			processor.WithTraces(createProcessor, component.StabilityLevelDevelopment)),
	}
}

// ProcessorConfig bounds the ingest path.
type ProcessorConfig struct {
	// MemoryLimitMiB is Spoor's memory budget (SPOOR_MEMORY_LIMIT_MIB). Past 80% of it,
	// measured as the process's resident anonymous memory, requests are refused with a
	// retryable error until memory falls. 0 turns the check off.
	MemoryLimitMiB int64 `mapstructure:"memory_limit_mib"`
	// MaxInflightSpans bounds the spans accepted and not yet stored; past it, requests
	// are refused with a retryable error. 0 means 40 per MiB of memory_limit_mib (no
	// bound when that is 0 too).
	MaxInflightSpans int64 `mapstructure:"max_inflight_spans"`
	// RetryAfter is the delay a refused sender is asked to wait (RetryInfo, Retry-After).
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// Limits bound what one request may hold.
	Limits `mapstructure:",squash"`
}

// Validate checks the configuration.
func (c *ProcessorConfig) Validate() error {
	if c.MemoryLimitMiB < 0 || c.MaxInflightSpans < 0 {
		return errors.New("memory_limit_mib and max_inflight_spans must not be negative")
	}
	if c.RetryAfter < time.Second {
		return fmt.Errorf("retry_after %v must be at least 1s (Retry-After counts whole seconds)", c.RetryAfter)
	}
	return c.Limits.validate()
}

func createProcessor(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	c := cfg.(*ProcessorConfig)
	m := set.TelemetrySettings.MeterProvider.Meter("github.com/spoortrace/spoor/ingest")
	rejected, err := m.Int64Counter("spoor_ingest_rejected_spans",
		metric.WithDescription("Spans refused at the door as invalid, by reason."))
	if err != nil {
		return nil, fmt.Errorf("create rejected spans counter: %w", err)
	}
	refused, err := m.Int64Counter("spoor_ingest_refused_spans",
		metric.WithDescription("Spans refused with a retryable error because Spoor was overloaded, by reason (memory, inflight)."))
	if err != nil {
		return nil, fmt.Errorf("create refused spans counter: %w", err)
	}
	v := &validator{next: next, rejected: rejected, refused: refused, limits: c.Limits,
		adm: newAdmission(c.MemoryLimitMiB, c.MaxInflightSpans, c.RetryAfter)}
	inflight, err := m.Int64ObservableGauge("spoor_ingest_inflight_spans",
		metric.WithDescription("Spans accepted and not yet stored."))
	if err != nil {
		return nil, fmt.Errorf("create in-flight gauge: %w", err)
	}
	memory, err := m.Int64ObservableGauge("spoor_ingest_memory_bytes",
		metric.WithDescription("The process's resident anonymous memory, as the ingest admission control last measured it."),
		metric.WithUnit("By"))
	if err != nil {
		return nil, fmt.Errorf("create memory gauge: %w", err)
	}
	v.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(inflight, v.adm.inflight.Load())
		o.ObserveInt64(memory, v.adm.memory.Load())
		return nil
	}, inflight, memory)
	if err != nil {
		return nil, fmt.Errorf("register ingest gauges: %w", err)
	}
	return v, nil
}

// validator refuses requests that hold spans no store can keep, and requests that
// would take Spoor past its bounds.
type validator struct {
	next     consumer.Traces
	rejected metric.Int64Counter
	refused  metric.Int64Counter
	limits   Limits
	adm      *admission
	reg      metric.Registration
	doors    []*middleware
}

// Start starts the memory sampler and hands the admission control to the door
// middleware, so that it can refuse requests before reading them while Spoor is full.
func (v *validator) Start(_ context.Context, host component.Host) error {
	v.adm.start()
	for _, ext := range host.GetExtensions() {
		if mw, ok := ext.(*middleware); ok {
			mw.adm.Store(v.adm)
			v.doors = append(v.doors, mw)
		}
	}
	return nil
}

// Shutdown stops the memory sampler. Safe without Start and safe twice.
func (v *validator) Shutdown(context.Context) error {
	for _, mw := range v.doors {
		mw.adm.CompareAndSwap(v.adm, nil)
	}
	v.doors = nil
	v.adm.shutdown()
	if v.reg != nil {
		err := v.reg.Unregister()
		v.reg = nil
		return err
	}
	return nil
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
	markSeen(ctx)
	if err := v.check(ctx, td); err != nil {
		recordRejection(ctx, err.Error())
		return consumererror.NewPermanent(status.Error(codes.InvalidArgument, err.Error()))
	}
	n := td.SpanCount()
	if reason := v.adm.admit(n); reason != overloadNone {
		v.refused.Add(ctx, int64(n), metric.WithAttributes(attribute.String("reason", string(reason))))
		err := v.adm.refusal(reason, n)
		recordOverload(ctx, status.Convert(err).Message(), v.adm.retryAfter)
		return err
	}
	defer v.adm.release(n)
	if err := v.next.ConsumeTraces(ctx, td); err != nil {
		recordRejection(ctx, err.Error())
		return err
	}
	return nil
}

// check finds the first invalid span. A request is refused whole: accepting part of it
// would leave the sender unable to tell which spans to fix and resend.
func (v *validator) check(ctx context.Context, td ptrace.Traces) error {
	prioritySeen, e := v.limits.checkLimits(td)
	if e != nil {
		v.rejected.Add(ctx, int64(td.SpanCount()), e.reason)
		return e
	}
	if !prioritySeen {
		// The sampler then skips looking for it in every span (where it may trust what
		// the door decoded: see internal/otlpbody).
		otlpbody.Note(ctx, otlpbody.NoSamplingPriority)
	}
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
