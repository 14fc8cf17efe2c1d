package sampler

import (
	"errors"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/otlpwire"
)

// Held batches are kept as the protobuf encoding of an OTLP TracesData once the batch
// that filled them ends (heldBatch.seal): a held span as pdata is some forty small
// heap objects that every garbage collection cycle marks again while the span waits,
// and at 10% head sampling with the default 100,000 held spans that marking cost more
// than the rest of the sampler together (BenchmarkSamplerShareOfCPU). Encoded, a held
// span is about 300 pointer-free bytes the collector never scans, for one marshal. A
// policy keep walks the encoding and unmarshals only its trace's spans (cutWire): the
// many traces whose wait ends are never decoded. The walk is internal/otlpwire's, which
// also cuts traces out of the store's blocks.

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
	out, n, err := otlpwire.FilterTrace(nil, data, tid)
	if err != nil {
		return dst, errBadHeldProto
	}
	if n == 0 {
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
