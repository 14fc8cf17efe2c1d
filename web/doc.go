// Package web serves Spoor's browser UI from files embedded in the binary: the single-page
// app that `make ui` builds from web/ui into dist/ui (precompressed, served with
// Content-Encoding: gzip to clients that accept it), with index.html for every route of
// the app so that each view's URL opens it. It never answers under /api, /spoor/api or
// /healthz. Until the UI is built it serves a placeholder page that says so and links the
// API, so the query endpoint never answers a browser with a bare 404.
package web
