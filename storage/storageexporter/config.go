package storageexporter

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config names the trace store extension to write to.
type Config struct {
	// Storage is the ID of the spoor_storage extension that owns the store.
	Storage component.ID `mapstructure:"storage"`
	// Timeout bounds one write; past it the sender gets a retryable error.
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Storage.Type().String() == "" {
		return errors.New("storage must name a spoor_storage extension")
	}
	return nil
}
