// Package metrics is the spoor_metrics extension: Spoor's Prometheus endpoint
// (SPOOR_METRICS_ENDPOINT, GET /metrics).
//
// What it promises:
//   - One endpoint serves every metric: the collector's own (otelcol_*, and Spoor's
//     components' spoor_* metrics made through the collector's telemetry), read on each
//     scrape from the collector's Prometheus endpoint, which the default config puts on
//     an internal loopback port; and the families components register with it
//     (RegisterFamilies: spoor_analytics' RED metrics), which win over the collector's
//     families of the same name.
//   - The format is negotiated as promhttp does, OpenMetrics 1.0 included: a scrape
//     with Accept: application/openmetrics-text gets the exemplars (trace_id, span_id)
//     of the RED counters and histogram buckets; a plain scrape gets the text format,
//     with the same metric names. OpenMetrics 1.0 has no float histograms, so
//     histogram counts (weighted by adjusted count) are rounded there; counters whose
//     name lacks _total become "unknown" there, keeping their sample names.
//   - If the collector's endpoint does not answer within the scrape timeout, the
//     registered families are still served, and spoor_metrics_collector_scrape_failures_total
//     counts it.
//   - Request limits: GET and HEAD only, 16 KiB of headers, read and write timeouts, at
//     most 4 scrapes at once (503 past that), gzip when the scraper accepts it.
package metrics
