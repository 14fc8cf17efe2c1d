// Package otlpbody carries the protobuf bytes of the OTLP request whose spans a pipeline
// is handling, from the door that read them (ingest: the OTLP/HTTP body, the OTLP gRPC
// message) to the sampler, through the context the receiver hands its consumers.
//
// The sampler holds the spans head sampling drops while their trace is decided; copying
// their bytes out of the request costs a memory copy, where encoding them again from
// pdata cost most of the tail stage's CPU. The bytes say what the receiver decoded, so a
// consumer may use them only when nothing before it changed the spans (the sampler
// checks that its batch still matches them, span for span, and falls back otherwise).
//
// Ownership: the bytes belong to the door and are valid only during the consumer's
// ConsumeTraces call, which the door waits for; a consumer reads them and never writes or
// keeps them (it copies what it needs).
package otlpbody

import "context"

type key struct{}

// body is what the context holds: a pointer, so that the value boxes without an
// allocation of its own.
type body struct{ data []byte }

// NewContext returns ctx carrying data, the protobuf encoding of an OTLP
// ExportTraceServiceRequest (the same fields as a TracesData).
func NewContext(ctx context.Context, data []byte) context.Context {
	return context.WithValue(ctx, key{}, &body{data: data})
}

// FromContext returns the request bytes ctx carries, or nil.
func FromContext(ctx context.Context) []byte {
	if b, ok := ctx.Value(key{}).(*body); ok {
		return b.data
	}
	return nil
}
