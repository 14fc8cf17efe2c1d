// Package web serves Spoor's browser UI from files embedded in the binary. Until the UI
// is built (make ui), it serves a placeholder page that says so and links the API, so
// the query endpoint never answers a browser with a bare 404.
package web
