package remote

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/samplers/jaegerremote"
	"go.opentelemetry.io/otel/attribute"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// sampledCount starts n root spans named op and counts the sampled ones.
func sampledCount(tracer trace.Tracer, op string, n int) int {
	sampled := 0
	for range n {
		_, span := tracer.Start(context.Background(), op)
		if span.SpanContext().IsSampled() {
			sampled++
		}
		span.End()
	}
	return sampled
}

// The OTel Go SDK with the contrib Jaeger remote sampler, pointed at the extension,
// fetches its per-operation rates and samples by them, and follows a file edit.
func TestJaegerRemoteSamplerInSDK(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strategies.json")
	base := time.Now().Add(-time.Hour)
	writeFile(t, path, `{"service_strategies":[{"service":"checkout","type":"probabilistic","param":0.5,
		"operation_strategies":[{"operation":"keep","type":"probabilistic","param":1},{"operation":"drop","type":"probabilistic","param":0}]}]}`, base)
	s := startTestServer(t, func(c *Config) {
		c.StrategiesFile = path
		c.ReloadInterval = 10 * time.Millisecond
	})

	sampler := jaegerremote.New("checkout",
		jaegerremote.WithSamplingServerURL(s.url+"/sampling"),
		jaegerremote.WithSamplingRefreshInterval(20*time.Millisecond),
		// Until the first fetch, nothing is sampled: a sampled span proves the fetch.
		jaegerremote.WithInitialSampler(sdktrace.NeverSample()),
	)
	defer sampler.Close()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", "checkout"))),
	)
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracer := tp.Tracer("test")

	waitFor(t, "the SDK to fetch the strategy", func() bool { return sampledCount(tracer, "keep", 1) == 1 })
	if got := sampledCount(tracer, "keep", 500); got != 500 {
		t.Errorf("operation keep (rate 1): %d of 500 sampled", got)
	}
	if got := sampledCount(tracer, "drop", 500); got != 0 {
		t.Errorf("operation drop (rate 0): %d of 500 sampled", got)
	}
	// An operation the strategy does not list gets the service's 0.5: 2000 spans, within
	// 5 standard deviations (5·√(2000·0.25) ≈ 112) of 1000.
	if got := sampledCount(tracer, "other", 2000); got < 888 || got > 1112 {
		t.Errorf("operation other (default 0.5): %d of 2000 sampled", got)
	}
	if got := s.counter(t, "spoor_sampling_strategy_requests", "service=checkout", "result=ok"); got < 1 {
		t.Errorf("no request from the SDK counted")
	}

	// Swap the rates in the file: the SDK follows within a few refreshes.
	writeFile(t, path, `{"service_strategies":[{"service":"checkout","type":"probabilistic","param":0.5,
		"operation_strategies":[{"operation":"keep","type":"probabilistic","param":0},{"operation":"drop","type":"probabilistic","param":1}]}]}`, base.Add(time.Second))
	waitFor(t, "the SDK to follow the edit", func() bool { return sampledCount(tracer, "drop", 1) == 1 })
	if got := sampledCount(tracer, "drop", 500); got != 500 {
		t.Errorf("after the edit, operation drop (rate 1): %d of 500 sampled", got)
	}
	if got := sampledCount(tracer, "keep", 500); got != 0 {
		t.Errorf("after the edit, operation keep (rate 0): %d of 500 sampled", got)
	}
}

// The SDK reads the numeric enum too (what old SDKs need); a rate-limited strategy is
// applied as a rate limit.
func TestJaegerRemoteSamplerNumericRateLimiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strategies.json")
	writeFile(t, path, `{"default_strategy":{"type":"ratelimiting","param":1}}`, time.Now())
	s := startTestServer(t, func(c *Config) {
		c.StrategiesFile = path
		c.NumericStrategyType = true
	})
	sampler := jaegerremote.New("anything",
		jaegerremote.WithSamplingServerURL(s.url+"/"),
		jaegerremote.WithSamplingRefreshInterval(20*time.Millisecond),
		jaegerremote.WithInitialSampler(sdktrace.AlwaysSample()),
	)
	defer sampler.Close()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracer := tp.Tracer("test")
	waitFor(t, "the SDK to fetch the rate limit", func() bool {
		return s.counter(t, "spoor_sampling_strategy_requests", "result=ok") >= 2
	})
	// At 1 trace per second with a balance of 1, a burst of 1000 spans samples at most a couple.
	if got := sampledCount(tracer, "op", 1000); got > 2 {
		t.Errorf("rate limited at 1/s: %d of 1000 sampled in a burst", got)
	}
}
