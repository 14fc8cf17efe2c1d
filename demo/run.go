package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Run starts cfg.Rate checkout traces per second until cfg.Duration has
// passed (or, with a zero Duration, until ctx is cancelled), then flushes
// every exporter and returns what was sent. Cancelling ctx stops new traces
// early; the flush still runs, bounded by cfg.FlushTimeout.
//
// The error is non-nil when cfg is invalid, when an exporter cannot be
// created, or when any export failed; Stats are meaningful in the last case.
func Run(ctx context.Context, cfg Config, logger *zap.Logger) (Stats, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := cfg.Validate(); err != nil {
		return Stats{}, fmt.Errorf("demo config: %w", err)
	}
	c := &counters{}
	services, err := startServices(ctx, cfg, c, logger)
	if err != nil {
		return Stats{}, err
	}
	g := newGenerator(cfg.Seed, services, c)
	logger.Info("Sending demo checkout traces",
		zap.Float64("rate", cfg.Rate), zap.Duration("duration", cfg.Duration), zap.Int64("seed", cfg.Seed),
		zap.String("otlp_grpc", cfg.OTLPGRPCEndpoint), zap.String("otlp_http", cfg.OTLPHTTPEndpoint),
		zap.String("zipkin", cfg.ZipkinURL()))

	pace(ctx, cfg.Rate, cfg.Duration, func() { g.checkout(time.Now().Round(0)) })

	// The run's context may be cancelled by now; the flush deserves its own.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.FlushTimeout)
	defer cancel()
	flushErr := shutdownServices(flushCtx, services)
	stats := c.snapshot()
	logger.Info("Demo finished",
		zap.Int64("traces", stats.Traces), zap.Int64("otlp_grpc_spans", stats.OTLPGRPCSpans),
		zap.Int64("otlp_http_spans", stats.OTLPHTTPSpans), zap.Int64("zipkin_spans", stats.ZipkinSpans),
		zap.Int64("export_errors", stats.Errors), zap.Int64("failed_spans", stats.FailedSpans))

	var errs []error
	if err := g.err(); err != nil {
		errs = append(errs, err)
	}
	if stats.Errors > 0 {
		errs = append(errs, fmt.Errorf("%d export requests carrying %d spans failed, the first: %w",
			stats.Errors, stats.FailedSpans, c.firstError()))
	}
	if flushErr != nil {
		errs = append(errs, flushErr)
	}
	return stats, errors.Join(errs...)
}

// pace calls play at rate per second on a fixed schedule (trace i is due at
// start + i/rate, so slow iterations are caught up rather than lost), and
// returns when duration has passed or ctx is done. A zero duration means
// no end but ctx.
func pace(ctx context.Context, rate float64, duration time.Duration, play func()) {
	start := time.Now()
	var end time.Time
	if duration > 0 {
		end = start.Add(duration)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if !end.IsZero() && !due.Before(end) {
			break
		}
		if !sleepUntil(ctx, timer, due) {
			return
		}
		play()
	}
	sleepUntil(ctx, timer, end)
}

// sleepUntil waits for t (the zero time: forever) and reports false if ctx
// ended first. timer must be stopped.
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	if ctx.Err() != nil {
		return false
	}
	if t.IsZero() {
		<-ctx.Done()
		return false
	}
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		timer.Stop() // since Go 1.23 no stale tick can follow
		return false
	}
}
