package queryext

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
)

// Config configures the query server.
type Config struct {
	// ServerConfig is the HTTP server: endpoint, TLS, CORS, limits. A named field, not an
	// embedded one: embedded, its Unmarshal method would be promoted to Config and decode
	// only the server's keys, silently dropping `storage`.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// Storage is the ID of the spoor_storage extension to read from.
	Storage component.ID `mapstructure:"storage"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.ServerConfig.NetAddr.Endpoint == "" {
		return errors.New("endpoint must be set")
	}
	if c.Storage.Type().String() == "" {
		return errors.New("storage must name a spoor_storage extension")
	}
	return nil
}
