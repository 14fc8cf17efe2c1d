// Package e2e tests the built spoor binary from the outside, as its users meet it: a
// real process on loopback ports chosen by the test, fed by real clients (the OTel Go
// SDK over OTLP gRPC and HTTP, zipkin-go, raw Zipkin v1 JSON and Thrift), read back
// through the query API, stopped, killed and restarted on the same data directory.
//
// Tests that measure time or load (overload, SIGKILL under load, ingest delays while a
// webhook is down, error span to webhook delay) run alone; the others call t.Parallel
// and run together after them, two at a time on two cores — among them the forwarding
// outage test, which mostly waits through its minute-long outage.
package e2e
