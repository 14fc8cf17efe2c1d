// Package storageexporter is the collector exporter that writes spans to Spoor's trace
// store. It has no queue and no batching stage: ConsumeTraces returns only once the
// store has committed the spans, so a receiver acknowledges its sender only for spans
// that are on disk. Spans the store refuses as invalid come back as a permanent
// InvalidArgument error (HTTP 400 / gRPC InvalidArgument at the receiver); any other
// store failure is retryable.
package storageexporter
