package storageexporter

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/storageext"
)

// Type is the exporter's type in the collector configuration.
var Type = component.MustNewType("spoor_storage")

// NewFactory returns the factory of the storage exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(Type, createDefaultConfig,
		exporter.WithTraces(createTraces, component.StabilityLevelDevelopment))
}

func createDefaultConfig() component.Config {
	return &Config{
		Storage:       component.NewID(storageext.Type),
		TimeoutConfig: exporterhelper.NewDefaultTimeoutConfig(),
	}
}

type storageExporter struct {
	cfg    *Config
	writer storage.Writer
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e := &storageExporter{cfg: c}
	// No WithQueue and no WithRetry: the push is synchronous, so the receiver's caller
	// waits for the commit, and retrying is the sender's job (it holds the data).
	return exporterhelper.NewTraces(ctx, set, cfg, e.push,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	)
}

func (e *storageExporter) start(_ context.Context, host component.Host) error {
	st, err := storageext.GetStore(host, e.cfg.Storage)
	if err != nil {
		return err
	}
	e.writer = st
	return nil
}

func (e *storageExporter) push(ctx context.Context, td ptrace.Traces) error {
	if e.writer == nil {
		return errors.New("storage exporter has not started")
	}
	err := e.writer.WriteTraces(ctx, td)
	if err == nil {
		return nil
	}
	if storage.IsInvalidInput(err) {
		// The gRPC status makes the OTLP receiver answer InvalidArgument / HTTP 400;
		// permanence makes the Zipkin receiver answer 400 and keeps anyone from retrying.
		return consumererror.NewPermanent(status.Error(codes.InvalidArgument, err.Error()))
	}
	return fmt.Errorf("store spans: %w", err)
}
