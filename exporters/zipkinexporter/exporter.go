package zipkinexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Type is the exporter's type, the contrib exporter's.
var Type = component.MustNewType("zipkin")

// Config configures the exporter.
type Config struct {
	ClientConfig confighttp.ClientConfig                                  `mapstructure:",squash"`
	QueueConfig  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig  configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
	// Format is the body format: json or proto.
	Format string `mapstructure:"format"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.ClientConfig.Endpoint == "" {
		return errors.New("endpoint must be set to the Zipkin spans URL, e.g. http://host:9411/api/v2/spans")
	}
	u, err := url.Parse(c.ClientConfig.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("endpoint %q is not an http(s) URL", c.ClientConfig.Endpoint)
	}
	if c.Format != "json" && c.Format != "proto" {
		return fmt.Errorf("format %q must be json or proto", c.Format)
	}
	return nil
}

// NewFactory returns the exporter's factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(Type, createDefaultConfig,
		exporter.WithTraces(createTraces, component.StabilityLevelDevelopment))
}

func createDefaultConfig() component.Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = 5 * time.Second
	return &Config{
		ClientConfig: client,
		QueueConfig:  configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:  configretry.NewDefaultBackOffConfig(),
		Format:       "json",
	}
}

type zipkinExporter struct {
	cfg         *Config
	settings    component.TelemetrySettings
	marshaler   ptrace.Marshaler
	contentType string
	client      *http.Client
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e := &zipkinExporter{cfg: c, settings: set.TelemetrySettings}
	switch c.Format {
	case "proto":
		e.marshaler, e.contentType = zipkinv2.NewProtobufTracesMarshaler(), "application/x-protobuf"
	default:
		e.marshaler, e.contentType = zipkinv2.NewJSONTracesMarshaler(), "application/json"
	}
	return exporterhelper.NewTraces(ctx, set, cfg, e.push,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		// The HTTP client's timeout bounds each attempt.
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}

func (e *zipkinExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.settings)
	if err != nil {
		return fmt.Errorf("create zipkin http client: %w", err)
	}
	e.client = client
	return nil
}

func (e *zipkinExporter) push(ctx context.Context, td ptrace.Traces) error {
	if e.client == nil {
		return errors.New("zipkin exporter has not started")
	}
	body, err := e.marshaler.MarshalTraces(td)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("encode spans for zipkin: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.ClientConfig.Endpoint, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("zipkin request: %w", err))
	}
	req.Header.Set("Content-Type", e.contentType)
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("send spans to zipkin %s: %w", e.cfg.ClientConfig.Endpoint, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	err = fmt.Errorf("zipkin %s answered %d: %s", e.cfg.ClientConfig.Endpoint, resp.StatusCode, bytes.TrimSpace(msg))
	if resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return consumererror.NewPermanent(err)
	}
	return err
}
