// Package queryext is the collector extension that serves Spoor's query API and web UI
// (SPOOR_QUERY_ENDPOINT, :16686 by convention). It reads from the store owned by the
// spoor_storage extension, and reports ready on /healthz only once the collector has
// started every pipeline, so a 200 there means spans sent now are accepted.
package queryext
