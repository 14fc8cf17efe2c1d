package remote

import (
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
)

// Config configures the sampling strategies server.
type Config struct {
	// ServerConfig is the HTTP server: endpoint, TLS, CORS, limits. A named field, not an
	// embedded one: embedding would promote ServerConfig's Unmarshal to Config, and the
	// collector would then decode the server's keys only, silently dropping ours.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// GRPCEndpoint is where jaeger.api_v2.SamplingManager/GetSamplingStrategy is served
	// (host:port; Jaeger's port is 5779). Empty: no gRPC server.
	GRPCEndpoint string `mapstructure:"grpc_endpoint"`
	// StrategiesFile is a strategies file in Jaeger's format. Empty: every service gets
	// probabilistic sampling at DefaultSamplingPercentage.
	StrategiesFile string `mapstructure:"strategies_file"`
	// ReloadInterval is how often the strategies file's modification time and size are
	// checked; a change re-reads it. Zero turns reloading off.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	// DefaultSamplingPercentage (0–100) is the rate of services the file does not name,
	// and of every service without a file. The default config feeds it from
	// SPOOR_SAMPLING_PERCENTAGE, so that SDKs sample at the head sampler's rate.
	DefaultSamplingPercentage float64 `mapstructure:"default_sampling_percentage"`
	// NumericStrategyType writes strategyType as the enum's number (0, 1) instead of its
	// name ("PROBABILISTIC", "RATE_LIMITING"), for old SDKs that decode it as an integer.
	NumericStrategyType bool `mapstructure:"numeric_strategy_type"`
}

// Validate checks the configuration and the strategies file, so that `spoor validate`
// and a collector starting up refuse a bad file before anything listens, naming the file
// and what is wrong (with the line for JSON errors). It only reads the file; Start reads
// it again, since it may have changed in between.
func (c *Config) Validate() error {
	if c.ServerConfig.NetAddr.Endpoint == "" {
		return errors.New("endpoint must be set")
	}
	if c.GRPCEndpoint != "" {
		_, port, err := net.SplitHostPort(c.GRPCEndpoint)
		if err != nil {
			return fmt.Errorf("grpc_endpoint %q is not host:port: %w", c.GRPCEndpoint, err)
		}
		if port != "0" && c.GRPCEndpoint == c.ServerConfig.NetAddr.Endpoint {
			return fmt.Errorf("grpc_endpoint %q is also the HTTP endpoint", c.GRPCEndpoint)
		}
	}
	if c.ReloadInterval < 0 {
		return fmt.Errorf("reload_interval must not be negative, got %s", c.ReloadInterval)
	}
	if !(c.DefaultSamplingPercentage >= 0 && c.DefaultSamplingPercentage <= 100) {
		return fmt.Errorf("default_sampling_percentage must be between 0 and 100, got %v", c.DefaultSamplingPercentage)
	}
	if c.StrategiesFile != "" {
		if _, _, err := loadFile(c.StrategiesFile, c.DefaultSamplingPercentage); err != nil {
			return err
		}
	}
	return nil
}
