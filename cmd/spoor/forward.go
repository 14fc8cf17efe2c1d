package main

import (
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Forwarding in the default config. The collector's config cannot include a pipeline
// only when an environment variable is set, so spoor adds it to the embedded default
// config itself, before the collector reads it, for each SPOOR_FORWARD_* variable set:
//
//	exporters:  otlp_grpc/spoor_forward, otlp_http/spoor_forward, zipkin/spoor_forward
//	            (persistent sending_queue, retry_on_failure forever, a circuit breaker)
//	extensions: file_storage/spoor_forward (the queues, under SPOOR_DATA_DIR/forward-queue)
//	            spoor_breaker/<destination> (one circuit breaker per destination)
//	connectors: spoor_forward (store pipeline → forwarding pipeline; never fails ingest)
//	service:    traces exports to spoor_forward as well as spoor_storage, after the
//	            sampler; pipeline traces/spoor_forward takes it to the exporters.
//
// A --config file replaces the default config and these variables with it: such a file
// configures forwarding with the same components (README, "Forwarding").
const (
	envForwardOTLPGRPC = "SPOOR_FORWARD_OTLP_GRPC"
	envForwardOTLPHTTP = "SPOOR_FORWARD_OTLP_HTTP"
	envForwardZipkin   = "SPOOR_FORWARD_ZIPKIN"

	forwardName     = "spoor_forward"
	forwardStorage  = "file_storage/" + forwardName
	forwardPipeline = "traces/" + forwardName
	// forwardQueueSpans bounds each destination's queue on disk: past it, spans are not
	// queued for that destination (counted in spoor_forward_dropped_spans).
	forwardQueueSpans = 1_000_000
)

// defaultConfigYAML is the embedded default config with what the environment adds:
// forwarding for the SPOOR_FORWARD_* variables set, TLS for SPOOR_TLS_* and pprof for
// SPOOR_PPROF_ENDPOINT (tls.go).
func defaultConfigYAML(getenv func(string) string) string {
	exps := forwardExporters(getenv)
	tls := tlsSettings(getenv)
	pprof := getenv(envPprof)
	if len(exps) == 0 && tls == nil && pprof == "" {
		return defaultConfig
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(defaultConfig), &doc); err != nil {
		panic("BUG: embedded config.yaml does not parse: " + err.Error())
	}
	if len(exps) > 0 {
		addForwarding(doc, exps)
	}
	if tls != nil {
		addTLS(doc, tls)
	}
	if pprof != "" {
		addPprof(doc, pprof)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		panic("BUG: cannot marshal the default config: " + err.Error())
	}
	return string(out)
}

// addForwarding adds the forwarding pipeline for exps to the default config doc.
func addForwarding(doc map[string]any, exps []forwardExporter) {
	extensions := section(doc, "extensions")
	extensions[forwardStorage] = map[string]any{
		"directory":        "${env:SPOOR_DATA_DIR:-./data}/forward-queue",
		"create_directory": true,
		"compaction": map[string]any{
			"on_start":   true,
			"on_rebound": true,
			"directory":  "${env:SPOOR_DATA_DIR:-./data}/forward-queue",
		},
	}
	exporters := section(doc, "exporters")
	service := section(doc, "service")
	serviceExts := append(list(service, "extensions"), forwardStorage)
	var names []any
	for _, e := range exps {
		breaker := "spoor_breaker/" + e.destination
		extensions[breaker] = map[string]any{
			"failure_threshold": 3,
			"open_duration":     "2s",
			"max_open_duration": "10s",
		}
		serviceExts = append(serviceExts, breaker)
		conf := e.conf
		conf["middlewares"] = []any{map[string]any{"id": breaker}}
		conf["sending_queue"] = map[string]any{
			"enabled":       true,
			"storage":       forwardStorage,
			"sizer":         "items",
			"queue_size":    forwardQueueSpans,
			"num_consumers": 4,
		}
		conf["retry_on_failure"] = map[string]any{
			"enabled":          true,
			"initial_interval": "1s",
			"max_interval":     "10s",
			// The queue is on disk and bounded: keep retrying while the destination is down.
			"max_elapsed_time": "0s",
		}
		exporters[e.id] = conf
		names = append(names, e.id)
	}
	service["extensions"] = serviceExts
	section(doc, "connectors")[forwardName] = map[string]any{}
	pipelines := section(service, "pipelines")
	traces := section(pipelines, "traces")
	traces["exporters"] = append(list(traces, "exporters"), forwardName)
	pipelines[forwardPipeline] = map[string]any{
		"receivers": []any{forwardName},
		"exporters": names,
	}
}

type forwardExporter struct {
	id          string // the exporter's component ID
	destination string // the breaker's name and the metrics' destination label
	conf        map[string]any
}

// forwardExporters returns an exporter config for each SPOOR_FORWARD_* variable set.
// Values are checked by the exporters' own validation when the collector starts.
func forwardExporters(getenv func(string) string) []forwardExporter {
	var out []forwardExporter
	if v := strings.TrimSpace(getenv(envForwardOTLPGRPC)); v != "" {
		// host:port, or a URL whose https scheme asks for TLS.
		conf := map[string]any{"endpoint": v}
		if !strings.HasPrefix(v, "https://") {
			conf["tls"] = map[string]any{"insecure": true}
		}
		out = append(out, forwardExporter{id: "otlp_grpc/" + forwardName, destination: "otlp_grpc", conf: conf})
	}
	if v := strings.TrimSpace(getenv(envForwardOTLPHTTP)); v != "" {
		// A base URL gets /v1/traces appended, as the exporter does; a URL with a path is
		// taken as the traces URL itself.
		conf := map[string]any{"endpoint": v}
		if u, err := url.Parse(v); err == nil && strings.Trim(u.Path, "/") != "" {
			conf = map[string]any{"traces_endpoint": v}
		}
		out = append(out, forwardExporter{id: "otlp_http/" + forwardName, destination: "otlp_http", conf: conf})
	}
	if v := strings.TrimSpace(getenv(envForwardZipkin)); v != "" {
		// A URL; without a path, Zipkin's /api/v2/spans.
		if u, err := url.Parse(v); err == nil && strings.Trim(u.Path, "/") == "" {
			v = strings.TrimSuffix(v, "/") + "/api/v2/spans"
		}
		out = append(out, forwardExporter{id: "zipkin/" + forwardName, destination: "zipkin", conf: map[string]any{"endpoint": v}})
	}
	return out
}

func section(m map[string]any, key string) map[string]any {
	s, ok := m[key].(map[string]any)
	if !ok {
		if m[key] != nil {
			panic(fmt.Sprintf("BUG: default config %q is a %T, not a map", key, m[key]))
		}
		s = map[string]any{}
		m[key] = s
	}
	return s
}

func list(m map[string]any, key string) []any {
	l, _ := m[key].([]any)
	return l
}
