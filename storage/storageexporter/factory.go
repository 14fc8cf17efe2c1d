package storageexporter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/spoortrace/spoor/internal/otlpbody"
	"github.com/spoortrace/spoor/internal/otlpwire"
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
	cfg     *Config
	writer  storage.Writer
	guard   *storageext.WriteGuard
	batches metric.Int64Counter
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e := &storageExporter{cfg: c}
	var err error
	if e.batches, err = set.MeterProvider.Meter("github.com/spoortrace/spoor/storage/storageexporter").Int64Counter("spoor_storage_exporter_batches",
		metric.WithDescription("Batches the exporter wrote to the store, by how their block was encoded: request_bytes (the request's own bytes, use_request_bytes) or encoded.")); err != nil {
		return nil, fmt.Errorf("create batches counter: %w", err)
	}
	// No WithQueue and no WithRetry: the push is synchronous, so the receiver's caller
	// waits for the commit, and retrying is the sender's job (it holds the data).
	return exporterhelper.NewTraces(ctx, set, cfg, e.push,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	)
}

func (e *storageExporter) start(_ context.Context, host component.Host) error {
	ext, err := storageext.GetExtension(host, e.cfg.Storage)
	if err != nil {
		return err
	}
	st, err := storageext.GetStore(host, e.cfg.Storage)
	if err != nil {
		return err
	}
	e.writer, e.guard = st, ext.Guard()
	return nil
}

func (e *storageExporter) push(ctx context.Context, td ptrace.Traces) error {
	if e.writer == nil {
		return errors.New("storage exporter has not started")
	}
	if e.guard != nil {
		if err := e.guard.Check(td.SpanCount()); err != nil {
			// UNAVAILABLE with a retry delay: HTTP 503 with Retry-After at the OTLP
			// receiver; SDKs and collectors retry both.
			return retryable(codes.Unavailable, err.Error(), 5*time.Second)
		}
	}
	err := e.write(ctx, td)
	if e.guard != nil && !storage.IsInvalidInput(err) {
		e.guard.Done(err)
	}
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

var (
	asRequestBytes = metric.WithAttributeSet(attribute.NewSet(attribute.String("encoding", "request_bytes")))
	asEncoded      = metric.WithAttributeSet(attribute.NewSet(attribute.String("encoding", "encoded")))
)

// write stores td, as the request's own bytes when allowed and they still encode td.
func (e *storageExporter) write(ctx context.Context, td ptrace.Traces) error {
	if e.cfg.UseRequestBytes {
		if ew, ok := e.writer.(storage.EncodedWriter); ok {
			if raw := otlpbody.FromContext(ctx); raw != nil && otlpwire.Encodes(raw, td) {
				err := ew.WriteTracesEncoded(ctx, td, raw)
				if err == nil {
					e.batches.Add(ctx, 1, asRequestBytes)
				}
				return err
			}
		}
	}
	err := e.writer.WriteTraces(ctx, td)
	if err == nil {
		e.batches.Add(ctx, 1, asEncoded)
	}
	return err
}

// retryable is a gRPC status error with a RetryInfo delay.
func retryable(code codes.Code, msg string, delay time.Duration) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
		st = d
	}
	return st.Err()
}
