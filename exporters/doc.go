// Package exporters will hold Spoor's forwarding of the sampled stream to other
// backends (OTLP gRPC, OTLP HTTP, Zipkin) with persistent queues, retries and a circuit
// breaker per destination (issue 8). Until then Spoor stores spans and forwards none.
package exporters
