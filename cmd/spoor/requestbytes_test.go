package main

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"
	"go.yaml.in/yaml/v3"

	"github.com/spoortrace/spoor/sampler"
	"github.com/spoortrace/spoor/storage/storageexporter"
)

// The default config lets the sampler copy held spans from the request bytes: only
// spoor_ingest and spoor_analytics come before it, and its receivers are receivers.
func TestDefaultConfigHoldsRequestBytes(t *testing.T) {
	t.Setenv("SPOOR_METRICS_HOST", "127.0.0.1")
	t.Setenv("SPOOR_METRICS_PORT", "8888")
	t.Setenv("SPOOR_METRICS_INTERNAL_PORT", "18888")
	set := collectorSettings(true)
	provider, err := otelcol.NewConfigProvider(set.ConfigProviderSettings)
	if err != nil {
		t.Fatal(err)
	}
	factories, err := components()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := provider.Get(context.Background(), factories)
	if err != nil {
		t.Fatalf("resolve default config: %v", err)
	}
	sc, ok := cfg.Processors[component.NewID(sampler.Type)].(*sampler.Config)
	if !ok {
		t.Fatal("no spoor_sampler in the default config")
	}
	if !sc.Tail.HoldRequestBytes {
		t.Error("tail.hold_request_bytes is off in the default config, whose pipeline allows it")
	}
	ec, ok := cfg.Exporters[component.NewID(storageexporter.Type)].(*storageexporter.Config)
	if !ok {
		t.Fatal("no spoor_storage exporter in the default config")
	}
	if !ec.UseRequestBytes {
		t.Error("use_request_bytes is off in the default config, whose pipeline allows it")
	}
}

// The storage exporter may store the request's bytes where only processors that change
// no span, or the sampler (whose changes its check catches), come before it.
func TestSetUseRequestBytes(t *testing.T) {
	const base = `
receivers: {otlp: {}}
connectors: {spoor_forward: {}}
processors: {spoor_ingest: {}, spoor_analytics: {}, spoor_sampler: {}, batch: {}}
exporters: {spoor_storage: {}, spoor_storage/b: {use_request_bytes: true}, otlp: {}}
`
	cases := []struct {
		name, pipelines string
		want            map[string]any // exporter ID → use_request_bytes after the converter
	}{
		{"default pipeline", `
    traces: {receivers: [otlp], processors: [spoor_ingest, spoor_analytics, spoor_sampler], exporters: [spoor_storage, otlp]}`,
			map[string]any{"spoor_storage": true, "spoor_storage/b": true /* in no pipeline: untouched */, "otlp": nil}},
		{"a processor that may change spans", `
    traces: {receivers: [otlp], processors: [spoor_sampler, batch], exporters: [spoor_storage, spoor_storage/b]}`,
			map[string]any{"spoor_storage": false, "spoor_storage/b": false}},
		{"a connector feeds the pipeline", `
    traces: {receivers: [otlp], exporters: [spoor_forward]}
    traces/2: {receivers: [spoor_forward], processors: [spoor_sampler], exporters: [spoor_storage]}`,
			map[string]any{"spoor_storage": false}},
		{"one pipeline of two does not allow it", `
    traces: {receivers: [otlp], processors: [spoor_ingest], exporters: [spoor_storage]}
    traces/2: {receivers: [otlp], processors: [batch], exporters: [spoor_storage]}`,
			map[string]any{"spoor_storage": false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := converted(t, base+"service:\n  pipelines:"+c.pipelines)
			for id, want := range c.want {
				if got := conf.Get("exporters::" + id + "::use_request_bytes"); got != want {
					t.Errorf("%s: use_request_bytes %v, want %v", id, got, want)
				}
			}
		})
	}
	conf := converted(t, `
exporters: {spoor_storage: {use_request_bytes: false}}
service: {pipelines: {traces: {receivers: [otlp], exporters: [spoor_storage]}}}`)
	if got := conf.Get("exporters::spoor_storage::use_request_bytes"); got != false {
		t.Errorf("turned off in the config: %v after the converter", got)
	}
}

// What the pipelines allow decides, whatever a config says, except that a config may
// turn the option off.
func TestSetHoldRequestBytes(t *testing.T) {
	const base = `
receivers: {otlp: {}, zipkin: {}}
connectors: {spoor_forward: {}}
processors:
  spoor_ingest: {}
  spoor_analytics: {}
  spoor_sampler: {}
  spoor_sampler/b: {tail: {hold_request_bytes: true}}
  batch: {}
`
	cases := []struct {
		name, pipelines string
		want            map[string]any // sampler ID → hold_request_bytes after the converter
	}{
		{"default pipeline", `
    traces: {receivers: [otlp, zipkin], processors: [spoor_ingest, spoor_analytics, spoor_sampler]}`,
			map[string]any{"spoor_sampler": true, "spoor_sampler/b": true /* in no pipeline: untouched */}},
		{"sampler first", `
    traces: {receivers: [otlp], processors: [spoor_sampler, batch]}`,
			map[string]any{"spoor_sampler": true}},
		{"a processor that may change spans before it", `
    traces: {receivers: [otlp], processors: [spoor_ingest, batch, spoor_analytics, spoor_sampler, spoor_sampler/b]}`,
			map[string]any{"spoor_sampler": false, "spoor_sampler/b": false}},
		{"a connector feeds the pipeline", `
    traces: {receivers: [otlp], processors: [batch], exporters: [spoor_forward]}
    traces/2: {receivers: [spoor_forward], processors: [spoor_sampler]}`,
			map[string]any{"spoor_sampler": false}},
		{"one pipeline of two does not allow it", `
    traces: {receivers: [otlp], processors: [spoor_ingest, spoor_sampler]}
    traces/2: {receivers: [zipkin], processors: [batch, spoor_sampler]}`,
			map[string]any{"spoor_sampler": false}},
		{"allowed, set true in the config", `
    traces: {receivers: [otlp], processors: [spoor_ingest, spoor_sampler/b]}`,
			map[string]any{"spoor_sampler/b": true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := converted(t, base+"service:\n  pipelines:"+c.pipelines)
			for id, want := range c.want {
				if got := conf.Get("processors::" + id + "::tail::hold_request_bytes"); got != want {
					t.Errorf("%s: hold_request_bytes %v, want %v", id, got, want)
				}
			}
		})
	}
	// Turned off in the config: stays off where the pipeline would allow it.
	conf := converted(t, `
processors: {spoor_sampler: {tail: {hold_request_bytes: false}}}
service: {pipelines: {traces: {receivers: [otlp], processors: [spoor_sampler]}}}`)
	if got := conf.Get("processors::spoor_sampler::tail::hold_request_bytes"); got != false {
		t.Errorf("turned off in the config: %v after the converter", got)
	}
}

// converted is doc, a collector config in YAML, after the request-bytes converter.
func converted(t *testing.T, doc string) *confmap.Conf {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	conf := confmap.NewFromStringMap(m)
	if err := setHoldRequestBytes(conf); err != nil {
		t.Fatal(err)
	}
	return conf
}
