package ingest

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	"github.com/spoortrace/spoor/internal/otlpbody"
)

// The OTLP gRPC request's bytes for the sampler (internal/otlpbody), as the OTLP/HTTP
// door passes the body. gRPC decodes a message before any interceptor sees the call,
// with the codec registered for its content subtype, "proto", which pdata replaces
// with its own (pdata internal/otelgrpc: it materializes the message into one buffer,
// unmarshals it and frees the buffer). Spoor registers a codec in front of pdata's that
// does the same for an OTLP trace request but frees the buffer only after the call: it
// parks the buffer under the request it decoded, and the door's unary interceptor
// takes it from there into the call's context and frees it when the call returns
// (the pipeline behind the receiver is synchronous), or when the sampler, which may
// keep it longer, lets it go. Nothing is copied.
//
// A request that never reaches the interceptor (an earlier interceptor refused it, or
// its receiver has no door middleware) leaves its buffer parked; at most parkedBodies
// are, the oldest freed first, and a request whose buffer was freed that way only goes
// without bytes. Until a door gives gRPC servers its options, nothing is parked.

// exportTracesMethod is the OTLP trace export call.
const exportTracesMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// parkedBodies bounds the buffers parked between decoding and the interceptor: more
// than the requests usually decoded at once between those two points.
const parkedBodies = 16

// parkingOn is set once a door has given a gRPC server its interceptor.
var parkingOn atomic.Bool

func init() {
	delegate := encoding.GetCodecV2("proto")
	reqType := traceRequestType()
	if delegate == nil || reqType == nil {
		return // no bytes for the sampler: it encodes the spans it holds
	}
	encoding.RegisterCodecV2(&bodyCodec{delegate: delegate, reqType: reqType})
}

// traceRequestType is the type gRPC decodes an OTLP trace request into: the pointer
// pdata's ptraceotlp.ExportRequest wraps (its orig field), or nil if pdata changed.
func traceRequestType() reflect.Type {
	f, ok := reflect.TypeOf(ptraceotlp.ExportRequest{}).FieldByName("orig")
	if !ok || f.Type.Kind() != reflect.Pointer {
		return nil
	}
	if _, ok := reflect.Zero(f.Type).Interface().(protoUnmarshaler); !ok {
		return nil
	}
	return f.Type
}

type protoUnmarshaler interface {
	UnmarshalProto([]byte) error
}

// bodyCodec is pdata's gRPC codec, keeping the bytes of OTLP trace requests.
type bodyCodec struct {
	delegate encoding.CodecV2
	reqType  reflect.Type
}

func (c *bodyCodec) Name() string { return c.delegate.Name() }

func (c *bodyCodec) Marshal(v any) (mem.BufferSlice, error) { return c.delegate.Marshal(v) }

func (c *bodyCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if !parkingOn.Load() || reflect.TypeOf(v) != c.reqType {
		return c.delegate.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	if err := v.(protoUnmarshaler).UnmarshalProto(buf.ReadOnlyData()); err != nil {
		buf.Free()
		return err
	}
	parked.put(v, buf)
	return nil
}

// parking holds decoded requests' buffers until the interceptor takes them.
type parking struct {
	mu    sync.Mutex
	slots [parkedBodies]struct {
		req any
		buf mem.Buffer
	}
	next int
}

var parked parking

func (p *parking) put(req any, buf mem.Buffer) {
	p.mu.Lock()
	s := &p.slots[p.next]
	old := s.buf
	s.req, s.buf = req, buf
	p.next = (p.next + 1) % parkedBodies
	p.mu.Unlock()
	if old != nil {
		old.Free() // its request never reached the interceptor
	}
}

func (p *parking) take(req any) mem.Buffer {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.slots {
		if s := &p.slots[i]; s.buf != nil && s.req == req {
			buf := s.buf
			s.req, s.buf = nil, nil
			return buf
		}
	}
	return nil
}

// requestBytesInterceptor puts an OTLP trace request's bytes, parked by bodyCodec,
// into the call's context, and frees them when the call returns.
func requestBytesInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod != exportTracesMethod {
		return handler(ctx, req)
	}
	buf := parked.take(req)
	if buf == nil {
		return handler(ctx, req)
	}
	defer buf.Free()
	// The sampler may keep the bytes (otlpbody.Retain): a reference of its own.
	retain := func() func() { buf.Ref(); return buf.Free }
	return handler(otlpbody.NewContext(ctx, buf.ReadOnlyData(), retain), req)
}
