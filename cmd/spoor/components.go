package main

import (
	"errors"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/pprofextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/spoortrace/spoor/analytics"
	"github.com/spoortrace/spoor/exporters"
	"github.com/spoortrace/spoor/exporters/zipkinexporter"
	"github.com/spoortrace/spoor/ingest"
	"github.com/spoortrace/spoor/metrics"
	"github.com/spoortrace/spoor/query/queryext"
	"github.com/spoortrace/spoor/sampler"
	"github.com/spoortrace/spoor/sampler/remote"
	"github.com/spoortrace/spoor/storage/storageexporter"
	"github.com/spoortrace/spoor/storage/storageext"
)

// components lists every component compiled into spoor.
func components() (otelcol.Factories, error) {
	receivers, err1 := otelcol.MakeFactoryMap[receiver.Factory](ingest.ReceiverFactories()...)
	processors, err2 := otelcol.MakeFactoryMap[processor.Factory](append(ingest.ProcessorFactories(), analytics.NewFactory(), sampler.NewFactory())...)
	exps, err3 := otelcol.MakeFactoryMap[exporter.Factory](storageexporter.NewFactory(),
		// Forwarding (forward.go): the collector's OTLP exporters and Spoor's Zipkin one.
		otlpexporter.NewFactory(), otlphttpexporter.NewFactory(), zipkinexporter.NewFactory())
	extensions, err4 := otelcol.MakeFactoryMap[extension.Factory](
		storageext.NewFactory(),
		queryext.NewFactory(),
		ingest.NewExtensionFactory(),
		metrics.NewFactory(),
		remote.NewFactory(),
		// The forwarding queues' disk storage and the per-destination circuit breakers.
		filestorage.NewFactory(),
		exporters.NewBreakerFactory(),
		// Not in the default config; `--set` or a config file turns it on for profiling.
		pprofextension.NewFactory(),
	)
	connectors, err5 := otelcol.MakeFactoryMap[connector.Factory](exporters.NewForwardFactory())
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return otelcol.Factories{}, err
	}
	return otelcol.Factories{
		Receivers:  receivers,
		Processors: processors,
		Exporters:  exps,
		Extensions: extensions,
		Connectors: connectors,
		Telemetry:  otelconftelemetry.NewFactory(),
	}, nil
}
