package metrics

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the spoor_metrics extension's configuration.
type Config struct {
	// Endpoint is host:port of GET /metrics.
	Endpoint string `mapstructure:"endpoint"`
	// CollectorEndpoint is host:port of the collector's own Prometheus endpoint
	// (service::telemetry::metrics::readers), whose families are served too. Empty:
	// only the registered families.
	CollectorEndpoint string `mapstructure:"collector_endpoint"`
	// ScrapeTimeout bounds the read of the collector's endpoint on each scrape.
	ScrapeTimeout time.Duration `mapstructure:"scrape_timeout"`
}

func createDefaultConfig() *Config {
	return &Config{Endpoint: "localhost:8888", ScrapeTimeout: 5 * time.Second}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("endpoint %q is not host:port: %w", c.Endpoint, err))
	}
	if c.CollectorEndpoint != "" {
		if _, _, err := net.SplitHostPort(c.CollectorEndpoint); err != nil {
			errs = append(errs, fmt.Errorf("collector_endpoint %q is not host:port: %w", c.CollectorEndpoint, err))
		} else if c.CollectorEndpoint == c.Endpoint {
			errs = append(errs, fmt.Errorf("collector_endpoint %q is the endpoint itself", c.CollectorEndpoint))
		}
	}
	if c.ScrapeTimeout <= 0 {
		errs = append(errs, errors.New("scrape_timeout must be positive"))
	}
	return errors.Join(errs...)
}
