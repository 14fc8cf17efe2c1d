package analytics

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const (
	callsHelp    = "Spans received (before sampling), weighted by adjusted count, by service, span name and kind."
	errorsHelp   = "Spans with status Error received (before sampling), weighted by adjusted count."
	durationHelp = "Span durations in seconds (before sampling), weighted by adjusted count."
)

// durationBounds are the Prometheus histogram buckets of spoor_span_duration_seconds.
var durationBounds = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// durationBucket is the index of the first bound at or above sec (len for +Inf).
func durationBucket(sec float64) int {
	for i, b := range durationBounds {
		if sec <= b {
			return i
		}
	}
	return len(durationBounds)
}

type telemetry struct {
	rollupsLost metric.Int64Counter
	reg         metric.Registration
}

func newTelemetry(mp metric.MeterProvider, p *analyticsProcessor) (*telemetry, error) {
	m := mp.Meter("github.com/spoortrace/spoor/analytics")
	t := &telemetry{}
	var err error
	wrap := func(e error) error { return fmt.Errorf("create analytics metrics: %w", e) }
	// The RED metrics are kept by the processor, weighted, with their exemplars, and
	// served by spoor_metrics (families.go) when it runs — the collector's Prometheus
	// endpoint serves no exemplars. Without it they are observed here, the duration
	// histogram as the three counter families of a Prometheus histogram: an OTel
	// histogram takes one unweighted observation per span, and that Record cost more
	// CPU than the rest of the analytics together (profile of BenchmarkAnalytics).
	calls, err := m.Float64ObservableCounter("spoor_span_calls_total", metric.WithDescription(callsHelp))
	if err != nil {
		return nil, wrap(err)
	}
	errs, err := m.Float64ObservableCounter("spoor_span_errors_total", metric.WithDescription(errorsHelp))
	if err != nil {
		return nil, wrap(err)
	}
	durBucket, err := m.Float64ObservableCounter("spoor_span_duration_seconds_bucket",
		metric.WithDescription("Span durations (before sampling) at or below le seconds, weighted by adjusted count: a Prometheus histogram's buckets."))
	if err != nil {
		return nil, wrap(err)
	}
	durSum, err := m.Float64ObservableCounter("spoor_span_duration_seconds_sum",
		metric.WithDescription("Sum of span durations in seconds (before sampling), weighted by adjusted count."))
	if err != nil {
		return nil, wrap(err)
	}
	durCount, err := m.Float64ObservableCounter("spoor_span_duration_seconds_count",
		metric.WithDescription("Spans counted in spoor_span_duration_seconds_bucket (weighted)."))
	if err != nil {
		return nil, wrap(err)
	}
	if t.rollupsLost, err = m.Int64Counter("spoor_analytics_rollups_lost_total",
		metric.WithDescription("Rollup records dropped because writing them to the store failed twice.")); err != nil {
		return nil, wrap(err)
	}
	edgeCalls, err := m.Float64ObservableCounter("spoor_service_graph_calls_total",
		metric.WithDescription("Calls between services (before sampling), weighted by adjusted count, by client and server."))
	if err != nil {
		return nil, wrap(err)
	}
	edgeErrors, err := m.Float64ObservableCounter("spoor_service_graph_errors_total",
		metric.WithDescription("Failed calls between services (before sampling), weighted by adjusted count."))
	if err != nil {
		return nil, wrap(err)
	}
	unmatched, err := m.Int64ObservableCounter("spoor_service_graph_unmatched_spans_total",
		metric.WithDescription("Spans whose parent span did not arrive within the edge wait."))
	if err != nil {
		return nil, wrap(err)
	}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		g := p.graph
		for k, v := range g.totals {
			attrs := metric.WithAttributes(attribute.String("client", g.names[k.parent]), attribute.String("server", g.names[k.child]))
			o.ObserveFloat64(edgeCalls, v[0], attrs)
			o.ObserveFloat64(edgeErrors, v[1], attrs)
		}
		o.ObserveInt64(unmatched, g.unmatched)
		if p.exposed.Load() {
			return nil
		}
		for _, s := range p.series {
			o.ObserveFloat64(calls, s.calls, s.plainAttrs)
			if s.errors > 0 {
				o.ObserveFloat64(errs, s.errors, s.plainAttrs)
			}
			var cum float64
			for i, c := range s.buckets {
				cum += c
				o.ObserveFloat64(durBucket, cum, s.bucketAttrs[i])
			}
			o.ObserveFloat64(durSum, s.sum, s.plainAttrs)
			o.ObserveFloat64(durCount, cum, s.plainAttrs)
		}
		return nil
	}, calls, errs, edgeCalls, edgeErrors, unmatched, durBucket, durSum, durCount)
	if err != nil {
		return nil, wrap(err)
	}
	return t, nil
}
