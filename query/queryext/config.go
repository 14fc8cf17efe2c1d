package queryext

import (
	"errors"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
)

// Config configures the query server.
type Config struct {
	// ServerConfig is the HTTP server: endpoint, TLS, CORS, limits. A named field, not an
	// embedded one: embedded, its Unmarshal method would be promoted to Config and decode
	// only the server's keys, silently dropping `storage`.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// Storage is the ID of the spoor_storage extension to read from.
	Storage component.ID `mapstructure:"storage"`
	// ZipkinAutocompleteKeys are the tag keys Zipkin's GET /api/v2/autocompleteKeys lists
	// (Zipkin's AUTOCOMPLETE_KEYS); none by default, as in Zipkin.
	ZipkinAutocompleteKeys []string `mapstructure:"zipkin_autocomplete_keys"`
	// MaxClockSkewAdjust is the largest shift the clock skew adjuster applies to a span;
	// zero means 1s, a negative duration turns the adjuster off.
	MaxClockSkewAdjust time.Duration `mapstructure:"max_clock_skew_adjust"`
	// AuthToken, when set, is required of every request but /healthz: as
	// `Authorization: Bearer <token>`, or as the spoor_token cookie the /login form sets.
	AuthToken configopaque.String `mapstructure:"auth_token"`
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
