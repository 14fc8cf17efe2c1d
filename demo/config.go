package demo

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Default endpoints, the same as the collector's conventional ports and the
// SPOOR_* contract in DESIGN.md.
const (
	DefaultOTLPGRPCEndpoint = "localhost:4317"
	DefaultOTLPHTTPEndpoint = "localhost:4318"
	DefaultZipkinEndpoint   = "localhost:9411"

	DefaultRate     = 10.0
	DefaultDuration = 30 * time.Second
	DefaultSeed     = 1
)

// Config says where the demo sends its traces and how many.
type Config struct {
	// OTLPGRPCEndpoint is the host:port of an OTLP/gRPC receiver (plaintext).
	OTLPGRPCEndpoint string
	// OTLPHTTPEndpoint is the host:port of an OTLP/HTTP receiver; spans are
	// POSTed to http://<endpoint>/v1/traces as protobuf.
	OTLPHTTPEndpoint string
	// ZipkinEndpoint is the host:port of a Zipkin receiver; spans are POSTed
	// to http://<endpoint>/api/v2/spans as JSON.
	ZipkinEndpoint string

	// Rate is the number of checkout traces started per second.
	Rate float64
	// Duration is how long traces are started for. Zero means until the
	// context passed to Run is cancelled.
	Duration time.Duration
	// Seed decides which traces fail and how, and every simulated latency.
	Seed int64

	// Environment is the deployment.environment of every service.
	Environment string
	// ExportTimeout bounds one export request.
	ExportTimeout time.Duration
	// FlushTimeout bounds the final flush of every exporter when Run ends.
	FlushTimeout time.Duration
}

// ConfigFromEnv returns the default Config with the endpoints taken from
// SPOOR_OTLP_GRPC_ENDPOINT, SPOOR_OTLP_HTTP_ENDPOINT and SPOOR_ZIPKIN_ENDPOINT
// when they are set.
func ConfigFromEnv() Config {
	cfg := DefaultConfig()
	if v := os.Getenv("SPOOR_OTLP_GRPC_ENDPOINT"); v != "" {
		cfg.OTLPGRPCEndpoint = v
	}
	if v := os.Getenv("SPOOR_OTLP_HTTP_ENDPOINT"); v != "" {
		cfg.OTLPHTTPEndpoint = v
	}
	if v := os.Getenv("SPOOR_ZIPKIN_ENDPOINT"); v != "" {
		cfg.ZipkinEndpoint = v
	}
	return cfg
}

// DefaultConfig returns the Config `spoor demo` runs with when given no flags
// and no environment.
func DefaultConfig() Config {
	return Config{
		OTLPGRPCEndpoint: DefaultOTLPGRPCEndpoint,
		OTLPHTTPEndpoint: DefaultOTLPHTTPEndpoint,
		ZipkinEndpoint:   DefaultZipkinEndpoint,
		Rate:             DefaultRate,
		Duration:         DefaultDuration,
		Seed:             DefaultSeed,
		Environment:      "demo",
		ExportTimeout:    5 * time.Second,
		FlushTimeout:     15 * time.Second,
	}
}

// ZipkinURL is where zipkin-go posts spans.
func (c Config) ZipkinURL() string {
	return "http://" + c.ZipkinEndpoint + "/api/v2/spans"
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	var errs []error
	for _, ep := range []struct{ name, value string }{
		{"OTLP gRPC endpoint", c.OTLPGRPCEndpoint},
		{"OTLP HTTP endpoint", c.OTLPHTTPEndpoint},
		{"Zipkin endpoint", c.ZipkinEndpoint},
	} {
		if _, _, err := net.SplitHostPort(ep.value); err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not host:port: %w", ep.name, ep.value, err))
		}
	}
	if !(c.Rate > 0) || c.Rate > 100000 {
		errs = append(errs, fmt.Errorf("rate %v traces/s is not in (0, 100000]", c.Rate))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %v is negative", c.Duration))
	}
	if c.ExportTimeout <= 0 {
		errs = append(errs, fmt.Errorf("export timeout %v is not positive", c.ExportTimeout))
	}
	if c.FlushTimeout <= 0 {
		errs = append(errs, fmt.Errorf("flush timeout %v is not positive", c.FlushTimeout))
	}
	return errors.Join(errs...)
}
