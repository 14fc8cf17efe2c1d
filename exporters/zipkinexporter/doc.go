// Package zipkinexporter sends spans to a Zipkin v2 endpoint (POST /api/v2/spans, JSON
// or protobuf). It takes the configuration of the contrib zipkin exporter — endpoint,
// format, the HTTP client settings, sending_queue and retry_on_failure — and is built
// the same way, on the collector's exporterhelper and the contrib Zipkin translator at
// the pinned versions: the contrib zipkinexporter v0.162.0 itself is refused by this
// project's module proxy (403). A 4xx answer other than 408 and 429 is permanent (the
// data will not be accepted on a retry); everything else is retried.
package zipkinexporter
