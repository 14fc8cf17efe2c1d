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
	// UseRequestBytes stores a batch as the bytes of the request it came in (which the
	// ingest door passes along, internal/otlpbody) when they still encode the batch,
	// instead of encoding it again. spoor sets it from the pipelines (cmd/spoor,
	// requestbytes.go): on only where every processor before the exporter changes no
	// span except by dropping spans or rewriting tracestates, which the check before
	// each write catches. A config can turn it off, never on elsewhere.
	UseRequestBytes bool `mapstructure:"use_request_bytes"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Storage.Type().String() == "" {
		return errors.New("storage must name a spoor_storage extension")
	}
	return nil
}
