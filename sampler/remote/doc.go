// Package remote is the spoor_sampling_strategies collector extension: it serves
// Jaeger-compatible remote sampling strategies over HTTP (SPOOR_SAMPLING_ENDPOINT,
// :5778 by convention), so that SDKs configured with a Jaeger remote sampler (for
// example go.opentelemetry.io/contrib/samplers/jaegerremote) fetch their rates from Spoor.
//
// It answers GET /?service=NAME and GET /sampling?service=NAME with the proto-JSON of
// jaeger.api_v2.SamplingStrategyResponse, and, on grpc_endpoint (SPOOR_SAMPLING_GRPC_ENDPOINT,
// :5779 as in Jaeger; empty: off), the gRPC jaeger.api_v2.SamplingManager/GetSamplingStrategy
// with Jaeger's generated types (jaeger-idl), the same strategy for the same service (an
// empty service name is InvalidArgument). Strategies come from a file in Jaeger's
// strategies file format, checked by the config's Validate (so `spoor validate` and
// start-up refuse a bad file, naming it and the reason, with the line and column of a
// JSON error) and again at Start, and re-read when it changes (a bad edit is logged and
// the last good version keeps being served); without a file every service gets
// probabilistic sampling at the same percentage as Spoor's head sampler.
package remote
