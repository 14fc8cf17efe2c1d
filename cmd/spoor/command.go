package main

import (
	_ "embed"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/spoortrace/spoor/demo"
)

//go:embed config.yaml
var defaultConfig string

// version is set by the linker (-X main.version=...).
var version = "dev"

// defaultMetricsEndpoint is SPOOR_METRICS_ENDPOINT's default.
const defaultMetricsEndpoint = "localhost:8888"

// newRootCommand builds the spoor command: the collector's own command (run, validate,
// components, featuregate, print-config) with Spoor's default configuration and the
// demo sub-command added.
func newRootCommand(args []string) *cobra.Command {
	cmd := otelcol.NewCommand(collectorSettings(false))
	cmd.Short = "Spoor: a distributed tracing collector and backend"
	// main prints the error once; cobra would print it a second time.
	cmd.SilenceErrors = true
	cmd.AddCommand(demo.NewCommand())
	cmd.SetArgs(withDefaultConfig(args))
	return cmd
}

// collectorSettings describes the distribution. The default config (with forwarding
// added from SPOOR_FORWARD_*, forward.go) is the only URI; a --config flag replaces it.
func collectorSettings(disableGracefulShutdown bool) otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "spoor",
			Description: "Spoor distributed tracing collector and backend",
			Version:     version,
		},
		Factories:               components,
		DisableGracefulShutdown: disableGracefulShutdown,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs: []string{"yaml:" + defaultConfigYAML(os.Getenv)},
				ProviderFactories: []confmap.ProviderFactory{
					yamlprovider.NewFactory(),
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
				},
				DefaultScheme: "env",
				// Sets the sampler's tail.hold_request_bytes from the pipelines
				// (requestbytes.go).
				ConverterFactories: []confmap.ConverterFactory{holdRequestBytesConverter()},
			},
		},
	}
}

// withDefaultConfig returns args for the collector command. The collector drops its
// default URIs as soon as any --config or --set flag is given; --set alone is meant to
// adjust Spoor's default config, so the default is passed explicitly in front of it.
func withDefaultConfig(args []string) []string {
	hasConfig, hasSet := false, false
	for _, a := range args {
		switch {
		case a == "--config" || strings.HasPrefix(a, "--config=") || a == "-config" || strings.HasPrefix(a, "-config="):
			hasConfig = true
		case a == "--set" || strings.HasPrefix(a, "--set=") || a == "-set" || strings.HasPrefix(a, "-set="):
			hasSet = true
		}
	}
	if hasSet && !hasConfig {
		return append([]string{"--config", "yaml:" + defaultConfigYAML(os.Getenv)}, args...)
	}
	return args
}

// exportMetricsEndpoint checks SPOOR_METRICS_ENDPOINT (host:port; spoor_metrics serves
// /metrics there), exports its parts as SPOOR_METRICS_HOST and SPOOR_METRICS_PORT (for
// configs written when the collector's own Prometheus reader served it), and picks
// SPOOR_METRICS_INTERNAL_PORT, the loopback port of the collector's own Prometheus
// reader, which spoor_metrics reads and serves (unless it is already set).
func exportMetricsEndpoint() error {
	ep := os.Getenv("SPOOR_METRICS_ENDPOINT")
	if ep == "" {
		ep = defaultMetricsEndpoint
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("SPOOR_METRICS_ENDPOINT %q is not host:port: %w", ep, err)
	}
	if err := os.Setenv("SPOOR_METRICS_HOST", host); err != nil {
		return fmt.Errorf("set SPOOR_METRICS_HOST: %w", err)
	}
	if err := os.Setenv("SPOOR_METRICS_PORT", port); err != nil {
		return fmt.Errorf("set SPOOR_METRICS_PORT: %w", err)
	}
	if os.Getenv("SPOOR_METRICS_INTERNAL_PORT") != "" {
		return nil
	}
	internal, err := freeLoopbackPort(os.Environ())
	if err != nil {
		return fmt.Errorf("pick a loopback port for the collector's metrics (or set SPOOR_METRICS_INTERNAL_PORT): %w", err)
	}
	if err := os.Setenv("SPOOR_METRICS_INTERNAL_PORT", strconv.Itoa(internal)); err != nil {
		return fmt.Errorf("set SPOOR_METRICS_INTERNAL_PORT: %w", err)
	}
	return nil
}

// freeLoopbackPort returns a port the kernel just had free on 127.0.0.1, other than any
// port a SPOOR_*_ENDPOINT variable of env names (those are bound only later). The
// collector binds it moments later; another process taking it in between would stop
// spoor at start with "binding address", and setting SPOOR_METRICS_INTERNAL_PORT avoids it.
func freeLoopbackPort(env []string) (int, error) {
	taken := map[string]bool{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SPOOR_") && strings.HasSuffix(k, "_ENDPOINT") {
			if _, p, err := net.SplitHostPort(v); err == nil {
				taken[p] = true
			}
		}
	}
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if err := ln.Close(); err != nil {
			return 0, err
		}
		if !taken[strconv.Itoa(port)] {
			return port, nil
		}
	}
	return 0, fmt.Errorf("every port picked is named by a SPOOR_*_ENDPOINT variable")
}
