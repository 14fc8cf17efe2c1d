// Package otlpbody carries the protobuf bytes of the OTLP request whose spans a pipeline
// is handling, from the door that read them (ingest: the OTLP/HTTP body, the OTLP gRPC
// message) to the sampler, through the context the receiver hands its consumers.
//
// The sampler holds the spans head sampling drops while their trace is decided; keeping
// them as the request's bytes costs nothing or a memory copy, where encoding them again
// from pdata cost most of the tail stage's CPU. The bytes say what the receiver decoded,
// so a consumer may use them only when nothing before it changed the spans (the sampler
// checks that its batch still matches them, span for span, and falls back otherwise).
//
// Ownership: the bytes belong to the door and are valid during the consumer's
// ConsumeTraces call, which the door waits for; a consumer reads them and never writes
// them. To keep them longer it calls Retain during the call, and the release function
// it gets once it is done with them; the door then does not reuse them until released.
//
// Facts: a consumer that has read every span of the request (ingest's validator) notes
// what it found out (Note), so that later consumers skip reading it again (Facts). A
// fact is about the spans the receiver decoded, like the bytes, and is as trustworthy:
// a consumer relies on one only where it may rely on the bytes, when nothing before it
// changes spans. A fact not noted is unknown, never false.
package otlpbody

import (
	"context"
	"sync"
	"sync/atomic"
)

// Fact is something known of every span of the request, one bit each.
type Fact uint32

const (
	// NoSamplingPriority: no span has an attribute named SamplingPriorityKey, which
	// the sampler otherwise looks up in every span.
	NoSamplingPriority Fact = 1 << iota
)

// SamplingPriorityKey is the span attribute the sampler obeys (OpenTracing's tag, which
// contrib's probabilistic_sampler reads too).
const SamplingPriorityKey = "sampling.priority"

type key struct{}

// body is what the context holds.
type body struct {
	data   []byte
	retain func() (release func())
	once   sync.Once // Retain hands the bytes over once
	facts  atomic.Uint32
}

// NewContext returns ctx carrying data, the protobuf encoding of an OTLP
// ExportTraceServiceRequest (the same fields as a TracesData), valid during the call.
// retain, if not nil, lets a consumer keep data beyond the call (Retain): it returns the
// function that gives data back.
func NewContext(ctx context.Context, data []byte, retain func() (release func())) context.Context {
	return context.WithValue(ctx, key{}, &body{data: data, retain: retain})
}

// FromContext returns the request bytes ctx carries, or nil.
func FromContext(ctx context.Context) []byte {
	if b, ok := ctx.Value(key{}).(*body); ok {
		return b.data
	}
	return nil
}

// Retain keeps the bytes FromContext returns valid after the call, until release is
// called (once). ok is false when the door cannot hand them over, or already has.
func Retain(ctx context.Context) (release func(), ok bool) {
	b, _ := ctx.Value(key{}).(*body)
	if b == nil || b.retain == nil {
		return nil, false
	}
	b.once.Do(func() { release = b.retain() })
	return release, release != nil
}

// Note records facts of the request ctx carries (nothing, when it carries none).
func Note(ctx context.Context, f Fact) {
	if b, ok := ctx.Value(key{}).(*body); ok {
		b.facts.Or(uint32(f))
	}
}

// Facts returns the facts noted of the request ctx carries.
func Facts(ctx context.Context) Fact {
	if b, ok := ctx.Value(key{}).(*body); ok {
		return Fact(b.facts.Load())
	}
	return 0
}
