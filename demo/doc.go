// Package demo is the traffic generator behind `spoor demo`: it plays a small
// shop's checkout — api-gateway, order-service, inventory-service,
// payment-service, fraud-service, ledger-service and notification-service —
// and sends the resulting traces to Spoor with real client libraries.
//
// What it promises:
//   - Every service has its own tracer and its own resource (service.name,
//     service.version, deployment.environment, host.name). api-gateway,
//     inventory-service and payment-service export with the OTel Go SDK over
//     OTLP/gRPC, order-service and notification-service over OTLP/HTTP, and
//     fraud-service and ledger-service with zipkin-go over Zipkin v2 JSON, so
//     one checkout trace crosses both protocols.
//   - Context crosses every hop the way it would on the wire: the caller
//     injects W3C traceparent and B3 headers into an http.Header with the real
//     propagators, and the callee extracts them. zipkin-go runs with 128-bit
//     trace IDs and unshared server spans, so the Zipkin spans of a trace are
//     children of the OTel client spans that called them, and the other way round.
//   - Failures a payment system really has appear in every short run: a card
//     declined by the processor, an inventory call that times out and is
//     retried, a fraud-service outage that opens payment-service's circuit
//     breaker, and a ledger write that fails and is compensated (refund and
//     CancelOrder). Which trace gets which failure, and every simulated
//     latency, follows from Config.Seed alone; trace and span IDs stay random
//     so that two runs never collide in the store.
//   - Span timestamps are generated, not measured: nothing sleeps inside a
//     trace, and the wall clock only paces the trace rate.
//   - Run flushes every exporter before it returns, and its Stats count what
//     the receivers acknowledged.
package demo
