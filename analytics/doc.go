// Package analytics is the spoor_analytics processor: it sits before the sampler, sees
// every span, and computes what sampling must not hide.
//
// What it promises:
//   - It never modifies, drops or delays spans: it reads each batch and passes it on.
//     Per-span work is a few map operations under one short lock per batch; no lock is
//     held across I/O, and nothing on the ingest path waits for the disk or the
//     webhook (flushes and alert delivery run in their own goroutines).
//   - Every count is weighted by the span's adjusted count, 2^56/(2^56-T) when an
//     upstream sampler wrote th into the tracestate (REFERENCE.md §2.1), else 1.
//   - RED per (service, operation, span kind) per minute of span start: calls, errors,
//     a duration histogram (storage.Histogram, p50/p95/p99 derivable).
//   - Service graph edges per minute: a span whose parent span belongs to another
//     service is a call parent → child (messaging for producer → consumer), matched
//     across batches in a two-generation table of bounded size (internal/spanmatch,
//     as storage/badgerstore's dependency counts are); a client or producer span naming an
//     uninstrumented peer (peer.service, service.peer.name, server.address) that no
//     span answers within the wait is a call to that peer.
//   - Rollups are flushed to the trace store every flush interval (default 2 s) and on
//     shutdown; they survive restarts and retention drops them with the spans.
//   - RED is exported as Prometheus metrics (spoor_span_calls_total,
//     spoor_span_errors_total, the weighted histogram spoor_span_duration_seconds),
//     service graph edges as spoor_service_graph_calls_total and _errors_total. The
//     RED samples keep their latest exemplar (trace and span ID) in place, per batch and
//     without allocating: an error span for the counters when the batch had one, the
//     slowest span for its histogram bucket. They are served with their exemplars by
//     the spoor_metrics extension when it runs (package metrics); otherwise through the
//     collector's telemetry, whose endpoint serves no exemplars (the histogram then as
//     bucket/sum/count counters).
//   - Alert rules (package alerts) are evaluated on the same stream.
package analytics
