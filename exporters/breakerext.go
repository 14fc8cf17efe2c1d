package exporters

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// BreakerType is the circuit breaker middleware's type. One instance guards one
// destination: name it after the destination (spoor_breaker/otlp_grpc) and list it under
// the exporter's `middlewares:`; the name is the destination label of its metrics.
var BreakerType = component.MustNewType("spoor_breaker")

// BreakerConfig configures one circuit breaker.
type BreakerConfig struct {
	// FailureThreshold is how many consecutive failed requests open the breaker.
	FailureThreshold int `mapstructure:"failure_threshold"`
	// OpenDuration is how long the breaker stays open the first time; each failed probe
	// doubles it, up to MaxOpenDuration.
	OpenDuration time.Duration `mapstructure:"open_duration"`
	// MaxOpenDuration caps the open period.
	MaxOpenDuration time.Duration `mapstructure:"max_open_duration"`
}

// Validate checks the configuration.
func (c *BreakerConfig) Validate() error {
	if c.FailureThreshold < 1 {
		return fmt.Errorf("failure_threshold %d must be at least 1", c.FailureThreshold)
	}
	if c.OpenDuration <= 0 || c.MaxOpenDuration < c.OpenDuration {
		return fmt.Errorf("open_duration %v must be positive and at most max_open_duration %v", c.OpenDuration, c.MaxOpenDuration)
	}
	return nil
}

// NewBreakerFactory returns the factory of the circuit breaker middleware.
func NewBreakerFactory() extension.Factory {
	return extension.NewFactory(BreakerType, func() component.Config {
		return &BreakerConfig{FailureThreshold: 3, OpenDuration: 2 * time.Second, MaxOpenDuration: 30 * time.Second}
	}, createBreaker, component.StabilityLevelDevelopment)
}

// BreakerExtension is a circuit breaker for the HTTP and gRPC clients of one exporter.
type BreakerExtension struct {
	component.StartFunc
	b           *breaker
	destination string
	rejected    metric.Int64Counter
	reg         metric.Registration
}

var (
	_ extensionmiddleware.HTTPClient = (*BreakerExtension)(nil)
	_ extensionmiddleware.GRPCClient = (*BreakerExtension)(nil)
)

func createBreaker(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	c := cfg.(*BreakerConfig)
	dest := set.ID.Name()
	if dest == "" {
		dest = set.ID.String()
	}
	m := set.TelemetrySettings.MeterProvider.Meter("github.com/spoortrace/spoor/exporters")
	destAttr := attribute.String("destination", dest)
	stateGauge, err := m.Int64ObservableGauge("spoor_forward_breaker_state",
		metric.WithDescription("Circuit breaker state per forwarding destination: 0 closed, 1 half-open, 2 open."))
	if err != nil {
		return nil, fmt.Errorf("create breaker state gauge: %w", err)
	}
	transitions, err := m.Int64Counter("spoor_forward_breaker_transitions",
		metric.WithDescription("Circuit breaker state changes per forwarding destination, by the state entered."))
	if err != nil {
		return nil, fmt.Errorf("create breaker transitions counter: %w", err)
	}
	rejected, err := m.Int64Counter("spoor_forward_breaker_rejected_requests",
		metric.WithDescription("Forwarding requests failed at once by an open circuit breaker, without contacting the destination."))
	if err != nil {
		return nil, fmt.Errorf("create breaker rejected counter: %w", err)
	}
	logger := set.TelemetrySettings.Logger
	e := &BreakerExtension{destination: dest, rejected: rejected}
	e.b = newBreaker(c.FailureThreshold, c.OpenDuration, c.MaxOpenDuration, time.Now, func(from, to State) {
		transitions.Add(context.Background(), 1, metric.WithAttributes(destAttr, attribute.String("state", to.String())))
		logger.Info("Forwarding circuit breaker changed state", zap.String("destination", dest),
			zap.Stringer("from", from), zap.Stringer("to", to))
	})
	e.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(stateGauge, int64(e.b.State()), metric.WithAttributes(destAttr))
		return nil
	}, stateGauge)
	if err != nil {
		return nil, fmt.Errorf("register breaker state gauge: %w", err)
	}
	return e, nil
}

// Shutdown unregisters the state gauge. It is safe without Start and safe twice.
func (e *BreakerExtension) Shutdown(context.Context) error {
	if e.reg == nil {
		return nil
	}
	err := e.reg.Unregister()
	e.reg = nil
	return err
}

// State returns the breaker's current state.
func (e *BreakerExtension) State() State { return e.b.State() }

func (e *BreakerExtension) reject(ctx context.Context) {
	e.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("destination", e.destination)))
}

// GetHTTPRoundTripper wraps the exporter's HTTP transport.
func (e *BreakerExtension) GetHTTPRoundTripper(context.Context) (extensionmiddleware.WrapHTTPRoundTripperFunc, error) {
	return func(_ context.Context, next http.RoundTripper) (http.RoundTripper, error) {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			t, ok := e.b.allow()
			if !ok {
				if req.Body != nil {
					_ = req.Body.Close()
				}
				e.reject(req.Context())
				return nil, ErrOpen
			}
			resp, err := next.RoundTrip(req)
			e.b.done(t, err == nil && httpDestinationOK(resp.StatusCode))
			return resp, err
		}), nil
	}, nil
}

// httpDestinationOK tells answers that show a working destination from those that show
// a failing one: 5xx and 429 (throttling) count as failures.
func httpDestinationOK(code int) bool {
	return code < 500 && code != http.StatusTooManyRequests
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// GetGRPCClientOptions adds the breaker to the exporter's gRPC client.
func (e *BreakerExtension) GetGRPCClientOptions(context.Context) ([]grpc.DialOption, error) {
	return []grpc.DialOption{grpc.WithUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			t, ok := e.b.allow()
			if !ok {
				e.reject(ctx)
				return status.Error(codes.Unavailable, ErrOpen.Error())
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			e.b.done(t, grpcDestinationOK(err))
			return err
		})}, nil
}

// grpcDestinationOK counts as failures the codes that say the destination is down,
// overloaded or too slow.
func grpcDestinationOK(err error) bool {
	if err == nil {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return true // our side gave up (shutdown): says nothing about the destination
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Unknown, codes.Internal:
		return false
	}
	return true
}
