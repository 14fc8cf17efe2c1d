package main

import (
	_ "go.opentelemetry.io/collector/otelcol"
	_ "go.opentelemetry.io/collector/receiver/otlpreceiver"
	_ "go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/zipkinreceiver"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv1"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/labstack/echo/v4"
	_ "github.com/openzipkin/zipkin-go"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	_ "go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	_ "go.opentelemetry.io/collector/confmap/provider/envprovider"
	_ "go.opentelemetry.io/collector/confmap/provider/fileprovider"
	_ "go.opentelemetry.io/collector/exporter/exporterhelper"
	_ "go.opentelemetry.io/collector/processor/processorhelper"
	_ "github.com/klauspost/compress/zstd"
)
func main() {}
