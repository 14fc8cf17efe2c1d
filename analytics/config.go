package analytics

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/spoortrace/spoor/alerts"
)

// Config is the spoor_analytics processor's configuration.
type Config struct {
	// Storage names the spoor_storage extension the rollups are written to; empty
	// keeps them in memory only (and in the metrics).
	Storage component.ID `mapstructure:"storage"`
	// FlushInterval is how often rollups are written to the store.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// EdgeWait is how long a span waits for its parent (or a client span for the span
	// answering it) before the service graph decides without it: between one and two
	// waits.
	EdgeWait time.Duration `mapstructure:"edge_wait"`
	// MaxSeries bounds the distinct (service, operation, kind) series; spans of further
	// series are counted under operation "(other)".
	MaxSeries int `mapstructure:"max_series"`
	// MaxEdgeSpans bounds each generation of the table of recent spans the service
	// graph matches parents in (60 bytes per span when full; it grows as it fills).
	MaxEdgeSpans int `mapstructure:"max_edge_spans"`
	// Alerts are the alert rules and their webhook.
	Alerts alerts.Config `mapstructure:"alerts"`
}

func createDefaultConfig() *Config {
	return &Config{
		FlushInterval: 2 * time.Second,
		EdgeWait:      10 * time.Second,
		MaxSeries:     20000,
		MaxEdgeSpans:  1 << 18,
		Alerts:        alerts.DefaultConfig(),
	}
}

// Validate checks the config, including the alert rules file.
func (c *Config) Validate() error {
	var errs []error
	if c.FlushInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("flush_interval %v is too short: at least 100ms", c.FlushInterval))
	}
	if c.EdgeWait < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("edge_wait %v is too short: at least 100ms", c.EdgeWait))
	}
	if c.MaxSeries < 1 || c.MaxEdgeSpans < 1024 {
		errs = append(errs, errors.New("max_series must be positive and max_edge_spans at least 1024"))
	}
	if err := c.Alerts.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("alerts: %w", err))
	}
	return errors.Join(errs...)
}
