package main

import (
	"context"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/zipkinreceiver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"

	"github.com/spoortrace/spoor/query/queryext"
)

// resolveDefaultConfig resolves and validates the default config with the environment
// the test has set.
func resolveDefaultConfig(t *testing.T) (*otelcol.Config, error) {
	t.Helper()
	t.Setenv("SPOOR_METRICS_HOST", "127.0.0.1")
	t.Setenv("SPOOR_METRICS_PORT", "8888")
	t.Setenv("SPOOR_METRICS_INTERNAL_PORT", "18888")
	t.Setenv("SPOOR_DATA_DIR", t.TempDir())
	provider, err := otelcol.NewConfigProvider(collectorSettings(true).ConfigProviderSettings)
	if err != nil {
		t.Fatal(err)
	}
	factories, err := components()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := provider.Get(context.Background(), factories)
	if err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

// TestDefaultConfigMutualTLS: with SPOOR_TLS_CLIENT_CA_FILE set beside the cert and key,
// every server of the default config — OTLP gRPC, OTLP HTTP, Zipkin and the query API —
// requires client certificates signed by that CA, and re-reads the file on change.
func TestDefaultConfigMutualTLS(t *testing.T) {
	t.Setenv(envTLSCert, "/etc/spoor/server.crt")
	t.Setenv(envTLSKey, "/etc/spoor/server.key")
	t.Setenv(envTLSClientCA, "/etc/spoor/clients-ca.pem")
	cfg, err := resolveDefaultConfig(t)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	otlp := cfg.Receivers[component.MustNewID("otlp")].(*otlpreceiver.Config)
	zipkin := cfg.Receivers[component.MustNewID("zipkin")].(*zipkinreceiver.Config)
	query := cfg.Extensions[component.MustNewID("spoor_query")].(*queryext.Config)
	servers := map[string]configoptional.Optional[configtls.ServerConfig]{
		"otlp grpc":   otlp.Protocols.GRPC.Get().TLS,
		"otlp http":   otlp.Protocols.HTTP.Get().ServerConfig.TLS,
		"zipkin":      zipkin.ServerConfig.TLS,
		"spoor_query": query.ServerConfig.TLS,
	}
	for name, tls := range servers {
		if !tls.HasValue() {
			t.Errorf("%s: no TLS", name)
			continue
		}
		c := tls.Get()
		if c.CertFile != "/etc/spoor/server.crt" || c.KeyFile != "/etc/spoor/server.key" {
			t.Errorf("%s: cert %q key %q", name, c.CertFile, c.KeyFile)
		}
		if c.ClientCAFile != "/etc/spoor/clients-ca.pem" || !c.ReloadClientCAFile {
			t.Errorf("%s: client_ca_file %q (reload %v), want the CA file, reloaded", name, c.ClientCAFile, c.ReloadClientCAFile)
		}
	}

	// Without the client CA, TLS stays one-way.
	t.Setenv(envTLSClientCA, "")
	cfg, err = resolveDefaultConfig(t)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	query = cfg.Extensions[component.MustNewID("spoor_query")].(*queryext.Config)
	if c := query.ServerConfig.TLS.Get(); c.ClientCAFile != "" {
		t.Errorf("client_ca_file %q without SPOOR_TLS_CLIENT_CA_FILE", c.ClientCAFile)
	}
}

// TestDefaultConfigClientCAWithoutCert: a client CA without the server's certificate
// and key is refused at start, never served in plaintext.
func TestDefaultConfigClientCAWithoutCert(t *testing.T) {
	t.Setenv(envTLSCert, "")
	t.Setenv(envTLSKey, "")
	t.Setenv(envTLSClientCA, "/etc/spoor/clients-ca.pem")
	_, err := resolveDefaultConfig(t)
	if err == nil || !strings.Contains(err.Error(), "certificate and key") {
		t.Fatalf("config with a client CA and no server certificate: err %v, want a refusal naming the certificate and key", err)
	}
}
