package main

import (
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/spoortrace/spoor/ingest"
	"github.com/spoortrace/spoor/query/queryext"
	"github.com/spoortrace/spoor/storage/storageexporter"
	"github.com/spoortrace/spoor/storage/storageext"
)

// components lists every component compiled into spoor.
func components() (otelcol.Factories, error) {
	return otelcol.Factories{
		Receivers:  otelcol.MakeFactoryMap[receiver.Factory](ingest.ReceiverFactories()...),
		Processors: otelcol.MakeFactoryMap[processor.Factory](),
		Exporters:  otelcol.MakeFactoryMap[exporter.Factory](storageexporter.NewFactory()),
		Extensions: otelcol.MakeFactoryMap[extension.Factory](
			storageext.NewFactory(),
			queryext.NewFactory(),
		),
		Connectors: otelcol.MakeFactoryMap[connector.Factory](),
		Telemetry:  otelconftelemetry.NewFactory(),
	}, nil
}
