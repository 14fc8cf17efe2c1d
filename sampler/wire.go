package sampler

import (
	"bytes"
	"errors"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Held batches are kept as the protobuf encoding of an OTLP TracesData once the batch
// that filled them ends (heldBatch.seal): a held span as pdata is some forty small
// heap objects that every garbage collection cycle marks again while the span waits,
// and at 10% head sampling with the default 100,000 held spans that marking cost more
// than the rest of the sampler together (BenchmarkSamplerShareOfCPU). Encoded, a held
// span is about 300 pointer-free bytes the collector never scans, for one marshal. A
// policy keep walks the encoding and unmarshals only its trace's spans (cutWire): the
// many traces whose wait ends are never decoded. The walk is badgerstore's filterTrace
// (storage/badgerstore/wire.go), which cuts one trace out of a stored block the same way.

// OTLP field numbers (opentelemetry/proto/trace/v1/trace.proto) that cutWire walks.
const (
	fieldTracesDataResourceSpans protowire.Number = 1 // TracesData.resource_spans
	fieldResourceSpansScopeSpans protowire.Number = 2 // ResourceSpans.scope_spans
	fieldScopeSpansSpans         protowire.Number = 2 // ScopeSpans.spans
	fieldSpanTraceID             protowire.Number = 1 // Span.trace_id
)

var errBadHeldProto = errors.New("BUG: a sealed held batch is not a well-formed OTLP TracesData")

// seal replaces a held batch's spans by their encoding. It keeps the pdata form when
// marshalling fails, which pdata only does for a broken invariant.
func (hb *heldBatch) seal() {
	data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(hb.td)
	if err != nil {
		return
	}
	hb.data, hb.td, hb.cur = data, ptrace.Traces{}, ptrace.SpanSlice{}
}

// cutWire appends to dst (created when it is the zero Traces and a span matches) the
// spans of trace tid in the encoded TracesData data, with copies of their resources and
// scopes: what heldBatch.cut does for a batch still in pdata form. data is not changed:
// a trace is cut once, when a policy keeps it, and the batch is dropped whole later.
func cutWire(data []byte, tid pcommon.TraceID, dst ptrace.Traces) (ptrace.Traces, error) {
	var out, rsBuf, ssBuf []byte
	for b := data; len(b) > 0; {
		num, typ, rs, n := consumeField(b)
		if n < 0 {
			return dst, errBadHeldProto
		}
		b = b[n:]
		if num != fieldTracesDataResourceSpans || typ != protowire.BytesType {
			continue
		}
		rsBuf = rsBuf[:0]
		found := false
		for r := rs; len(r) > 0; {
			num, typ, ss, n := consumeField(r)
			if n < 0 {
				return dst, errBadHeldProto
			}
			field := r[:n]
			r = r[n:]
			if num != fieldResourceSpansScopeSpans || typ != protowire.BytesType {
				rsBuf = append(rsBuf, field...) // resource, schema URL
				continue
			}
			ssBuf = ssBuf[:0]
			matched := false
			for s := ss; len(s) > 0; {
				num, typ, sp, n := consumeField(s)
				if n < 0 {
					return dst, errBadHeldProto
				}
				field := s[:n]
				s = s[n:]
				if num != fieldScopeSpansSpans || typ != protowire.BytesType {
					ssBuf = append(ssBuf, field...) // scope, schema URL
					continue
				}
				ok, err := spanHasTraceID(sp, tid)
				if err != nil {
					return dst, err
				}
				if ok {
					ssBuf = append(ssBuf, field...)
					matched = true
				}
			}
			if matched {
				rsBuf = protowire.AppendTag(rsBuf, fieldResourceSpansScopeSpans, protowire.BytesType)
				rsBuf = protowire.AppendBytes(rsBuf, ssBuf)
				found = true
			}
		}
		if found {
			out = protowire.AppendTag(out, fieldTracesDataResourceSpans, protowire.BytesType)
			out = protowire.AppendBytes(out, rsBuf)
		}
	}
	if out == nil {
		return dst, nil
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(out)
	if err != nil {
		return dst, errBadHeldProto
	}
	if dst == (ptrace.Traces{}) {
		return td, nil
	}
	td.ResourceSpans().MoveAndAppendTo(dst.ResourceSpans())
	return dst, nil
}

// consumeField reads one field; for a length-delimited field, val is its content.
func consumeField(b []byte) (num protowire.Number, typ protowire.Type, val []byte, n int) {
	num, typ, n = protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, n
	}
	if typ == protowire.BytesType {
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return 0, 0, nil, m
		}
		return num, typ, v, n + m
	}
	m := protowire.ConsumeFieldValue(num, typ, b[n:])
	if m < 0 {
		return 0, 0, nil, m
	}
	return num, typ, nil, n + m
}

// spanHasTraceID reports whether an encoded Span has the trace ID. pdata writes the
// trace ID first, so the loop almost always stops at the first field; an empty slot
// (a span moved out before the batch was sealed) has no field and matches nothing.
func spanHasTraceID(sp []byte, id pcommon.TraceID) (bool, error) {
	for len(sp) > 0 {
		num, typ, v, n := consumeField(sp)
		if n < 0 {
			return false, errBadHeldProto
		}
		if num == fieldSpanTraceID && typ == protowire.BytesType {
			return bytes.Equal(v, id[:]), nil
		}
		sp = sp[n:]
	}
	return false, nil
}
