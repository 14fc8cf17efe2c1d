// Package exporters is Spoor's forwarding of the sampled stream to other backends. The
// sending itself is the collector's: its OTLP gRPC and OTLP HTTP exporters, and a Zipkin
// exporter written here on the collector's exporterhelper (the contrib zipkinexporter
// v0.162.0 is not available from this project's module proxy), each with a persistent
// on-disk sending_queue (file_storage) and retry_on_failure. This package adds what the
// collector lacks:
//
//   - spoor_forward, a connector that hands the store pipeline's spans to a separate
//     forwarding pipeline and never returns a forwarding error to ingest: a destination
//     that is down, slow or whose queue is full never refuses or slows a sender, it only
//     costs the forwarded copy (counted in spoor_forward_dropped_spans);
//   - spoor_breaker, a circuit breaker per destination (closed, open, half-open) that an
//     exporter lists under `middlewares:`, so that a dead destination is not dialled on
//     every retry of every queued batch: while open, sends fail at once, without a
//     connection, and stay in the persistent queue for the next probe.
package exporters
