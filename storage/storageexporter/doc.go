// Package storageexporter is the collector exporter that writes spans to Spoor's trace
// store. It has no queue and no batching stage: ConsumeTraces returns only once the
// store has committed the spans, so a receiver acknowledges its sender only for spans
// that are on disk. Spans the store refuses as invalid come back as a permanent
// InvalidArgument error (HTTP 400 / gRPC InvalidArgument at the receiver); any other
// store failure is retryable.
//
// With use_request_bytes (which spoor sets from the pipelines), a batch whose OTLP
// request's bytes the ingest door passed along (internal/otlpbody) is stored as those
// bytes when they still encode it: same resources, scopes and spans in order, each with
// the same IDs and tracestate (otlpwire.Encodes) — what the sampler, the only processor
// allowed before it that changes spans, may change. Encoding the batch again was about
// a tenth of spoor's CPU per span.
package storageexporter
