package storageext

import "go.opentelemetry.io/otel/attribute"

var (
	partLSM  = attribute.String("part", "lsm")
	partVlog = attribute.String("part", "vlog")

	outcomeOK     = attribute.String("outcome", "ok")
	outcomeFailed = attribute.String("outcome", "failed")
)
