// Package query serves Spoor's HTTP query API on one echo instance: the Jaeger-compatible
// internal JSON API under /api (what Jaeger UI and Grafana's Jaeger datasource call), and a
// readiness probe at /healthz. It only reads, through storage.Reader.
//
// Its promises: responses have exactly the shapes of REFERENCE.md §1.2 (the
// {"data","total","limit","offset","errors"} envelope, Jaeger UI trace JSON); every
// malformed parameter is answered with a 400 naming the parameter, never a panic; requests
// whose query string or headers exceed the configured limits are refused with a 4xx before
// any handler runs. Later surfaces (Jaeger /api/v3, Zipkin /api/v2, Spoor's own API) are
// added in routes.go, the one place where routes are registered.
package query
