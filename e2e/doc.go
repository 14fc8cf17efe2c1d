// Package e2e tests the built spoor binary from the outside, as its users meet it: a
// real process on loopback ports chosen by the test, fed by real clients (the OTel Go
// SDK over OTLP gRPC and HTTP, zipkin-go, raw Zipkin v1 JSON and Thrift), read back
// through the query API, stopped, killed and restarted on the same data directory.
package e2e
