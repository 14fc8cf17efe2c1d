package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// TestMetricsAndCustomConfig checks that /metrics serves the collector's and Spoor's
// metrics on SPOOR_METRICS_ENDPOINT, and that --config runs a user's full collector
// config.
func TestMetricsAndCustomConfig(t *testing.T) {
	t.Parallel()
	s := startSpoor(t, t.TempDir())
	td, tid := goodTraces(0x77)
	if status, body := post(t, "http://"+s.ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", "", protoBody(t, td)); status != 200 {
		t.Fatalf("export: %d %s", status, body)
	}
	if _, ok := s.trace(tid.String(), 5*time.Second); !ok {
		t.Fatal("trace not stored")
	}
	m := s.metrics()
	for _, want := range []string{"otelcol_receiver_accepted_spans", "otelcol_exporter_sent_spans", "spoor_storage_disk_bytes", "spoor_storage_spans_written"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if n := acceptedSpans(m, "otlp"); n != 1 {
		t.Errorf("otelcol_receiver_accepted_spans for otlp = %v, want 1", n)
	}
}

func TestCustomConfig(t *testing.T) {
	t.Parallel()
	ep := freeEndpoints(t)
	dataDir := t.TempDir()
	mhost, mport, err := net.SplitHostPort(ep.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
extensions:
  spoor_storage:
    directory: %s
    retention: 1h
  spoor_query:
    endpoint: %s
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
exporters:
  spoor_storage: {}
service:
  extensions: [spoor_storage, spoor_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spoor_storage]
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: %s
                port: %s
`, dataDir, ep.Query, ep.OTLPHTTP, mhost, mport)
	path := filepath.Join(t.TempDir(), "spoor.yaml")
	if err := writeFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	// The SPOOR_* variables point elsewhere: the file alone must decide.
	s := startSpoorArgs(t, ep, t.TempDir(), []string{"--config", path})
	td, tid := goodTraces(0x78)
	if status, body := post(t, "http://"+ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", "", protoBody(t, td)); status != 200 {
		t.Fatalf("export: %d %s", status, body)
	}
	if _, ok := s.trace(tid.String(), 5*time.Second); !ok {
		t.Fatal("trace not stored")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "MANIFEST")); err != nil {
		t.Errorf("the config file's storage directory was not used: %v", err)
	}
}
