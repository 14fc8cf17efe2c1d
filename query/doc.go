// Package query serves Spoor's HTTP query API on one echo instance: Jaeger's internal JSON
// API under /api (Jaeger UI, Grafana's Jaeger datasource), Jaeger's api_v3 gateway under
// /api/v3, Zipkin's v2 query API under /api/v2 (Grafana's Zipkin datasource, Zipkin Lens),
// Spoor's own search API under /spoor/api/v1 (described by the OpenAPI document it serves
// at /spoor/api/v1/openapi.json), and a readiness probe at /healthz. It reads through
// storage.Reader and the optional abilities storage defines; its one write is deleting a
// trace (DELETE /spoor/api/v1/traces/{id}, storage.TraceDeleter).
//
// Its promises: each surface answers in exactly the shapes of REFERENCE.md §1 — bodies and
// error shapes alike (Jaeger's envelope, api_v3's {"error":{"httpCode","message"}},
// Zipkin's plain-text errors); Jaeger's adjusters (sort, span links, span ID uniquifier,
// clock skew) run unless raw is asked for, on a copy; every malformed or missing parameter
// is answered with a 400 naming it, in the surface's own error shape, never a panic;
// requests whose query string or headers exceed the configured limits are refused with a
// 4xx before any handler runs. Routes are registered in routes.go, the one place where a
// reader sees the whole URL space.
package query
