package storageext

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestValidateMaxDiskBytes(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if cfg.MaxDiskBytes != 0 {
		t.Fatalf("default max_disk_bytes = %d, want 0 (no cap)", cfg.MaxDiskBytes)
	}
	cfg.MaxDiskBytes = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max_disk_bytes") {
		t.Fatalf("Validate(max_disk_bytes -1) = %v, want an error naming max_disk_bytes", err)
	}
}

// TestRetentionMetrics: the store's retention counters are exported through the
// extension's registration, and Shutdown unregisters them.
func TestRetentionMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	ts := componenttest.NewNopTelemetrySettings()
	ts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = t.TempDir()
	cfg.SyncWrites = false
	cfg.MaxDiskBytes = 1 << 30
	e := newExtension(cfg, ts)
	if err := e.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	var names []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
		}
	}
	for _, want := range []string{"spoor_storage_retention_buckets_dropped", "spoor_storage_retention_reclaimed_bytes",
		"spoor_storage_retention_passes", "spoor_storage_retention_pass_duration", "spoor_storage_retention_write_stall",
		"spoor_storage_disk_bytes", "spoor_storage_index_head_spans", "spoor_storage_index_segments", "spoor_storage_index_flushes"} {
		if !slices.Contains(names, want) {
			t.Errorf("metric %s missing; have %v", want, names)
		}
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}
