package queryext

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
)

// TestConfigKeepsStorage guards against the embedded-ServerConfig trap: every key of the
// config must decode, not only the HTTP server's.
func TestConfigKeepsStorage(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	err := confmap.NewFromStringMap(map[string]any{
		"endpoint":                 "127.0.0.1:0",
		"storage":                  "spoor_storage/other",
		"zipkin_autocomplete_keys": []any{"env", "http.route"},
		"max_clock_skew_adjust":    "250ms",
	}).Unmarshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := component.MustNewIDWithName("spoor_storage", "other")
	if cfg.Storage != want {
		t.Errorf("storage = %v, want %v", cfg.Storage, want)
	}
	if cfg.ServerConfig.NetAddr.Endpoint != "127.0.0.1:0" {
		t.Errorf("endpoint = %q", cfg.ServerConfig.NetAddr.Endpoint)
	}
	if len(cfg.ZipkinAutocompleteKeys) != 2 || cfg.ZipkinAutocompleteKeys[1] != "http.route" || cfg.MaxClockSkewAdjust != 250*time.Millisecond {
		t.Errorf("query options: %v %v", cfg.ZipkinAutocompleteKeys, cfg.MaxClockSkewAdjust)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
