package ingest

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/zipkinreceiver"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
)

// ReceiverFactories returns the receivers Spoor accepts spans with.
func ReceiverFactories() []receiver.Factory {
	return []receiver.Factory{
		otlpreceiver.NewFactory(),
		zipkinreceiver.NewFactory(),
	}
}
