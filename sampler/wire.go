package sampler

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/spoortrace/spoor/internal/otlpbody"
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
// spans of the traces in want found in the encoded TracesData data, with copies of
// their resources and scopes, and adds to counts[i] the spans of want.tids[i]: what
// heldBatch.cut does for a batch still in pdata form. data is not changed: a trace is
// cut once, when a policy keeps it, and the batch is dropped whole later. raw says the
// spans were copied from their request, th and all (eraseHeldTH); keep, when not nil,
// that data is the whole request and which of its spans are held.
func cutWire(data []byte, keep []uint64, want *traceSet, dst ptrace.Traces, raw bool, counts []int) (ptrace.Traces, error) {
	out, n, err := cutHeld(nil, data, keep, want, counts)
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
	if raw {
		eraseHeldTH(td)
	}
	if dst == (ptrace.Traces{}) {
		return td, nil
	}
	td.ResourceSpans().MoveAndAppendTo(dst.ResourceSpans())
	return dst, nil
}

// traceSet is the few traces a batch's keeps cut out of one held batch: a span's trace
// is looked up among them once per span of the batch.
type traceSet struct {
	tids []pcommon.TraceID
	m    map[pcommon.TraceID]int // for more than a few
}

func (s *traceSet) reset(tids []pcommon.TraceID) {
	s.tids = tids
	clear(s.m)
	if len(tids) > 4 {
		if s.m == nil {
			s.m = make(map[pcommon.TraceID]int, len(tids))
		}
		for i, tid := range tids {
			s.m[tid] = i
		}
	}
}

// index is tid's place in the set, or -1.
func (s *traceSet) index(tid pcommon.TraceID) int {
	if len(s.tids) > 4 {
		if i, ok := s.m[tid]; ok {
			return i
		}
		return -1
	}
	for i := range s.tids {
		if s.tids[i] == tid {
			return i
		}
	}
	return -1
}

// With tail.hold_request_bytes, a batch's held spans are not encoded at all: they stay
// the protobuf bytes of the request they came in (internal/otlpbody puts them in the
// context), and the pdata spans are dropped from the batch as dropped spans are. When
// the held spans make most of the request's buffer, the buffer is kept whole
// (otlpbody.Retain) with a bitmap of the held spans; otherwise the held spans are
// copied out, field for field, with their resource's and scope's fields (settleRaw).
// This is right only when the pdata the sampler walks is what the receiver decoded
// from those bytes, which config decides (HoldRequestBytes: nothing before the sampler
// changes spans) and indexWire checks as far as it cheaply can: the request has the
// batch's resources, scopes and spans, in the same order, and a sample of the spans
// have the same trace and span IDs; otherwise the batch is held as pdata and sealed,
// as without the option.
//
// A span copied so still has the th it came with: it is erased when a policy keeps its
// trace and it is decoded (cutWire), as a held pdata span's is when it is held.

// wireScope is one scope of the request: its resource's and its own fields other than
// the nested spans, as ranges of tailBatch.resOther and scopeOther, and its spans, the
// n from walk index first.
type wireScope struct {
	res, scope [2]int
	first, n   int
}

// spansTag is the tag of ScopeSpans.spans: field 2, length-delimited.
var spansTag = byte(protowire.EncodeTag(otlpwire.FieldScopeSpansSpans, protowire.BytesType))

// indexWire finds each span of td in body, the request td was decoded from, and reports
// whether body holds exactly td's resources, scopes and spans in td's order (a sample
// of them, every scope's first and last included, with the same IDs); b.wspans,
// b.wscopes are then in walk order.
func (b *tailBatch) indexWire(body []byte, td ptrace.Traces) bool {
	b.wspans, b.wscopes = b.wspans[:0], b.wscopes[:0]
	b.resOther, b.scopeOther = b.resOther[:0], b.scopeOther[:0]
	rss := td.ResourceSpans()
	nrs := 0
	for rest := body; len(rest) > 0; {
		num, typ, rs, n := otlpwire.ConsumeField(rest)
		if n < 0 {
			return false
		}
		rest = rest[n:]
		if num != otlpwire.FieldTracesDataResourceSpans {
			continue // an unknown field, which pdata skipped too
		}
		if typ != protowire.BytesType || nrs == rss.Len() {
			return false
		}
		sss := rss.At(nrs).ScopeSpans()
		nrs++
		res := [2]int{len(b.resOther), 0}
		first := len(b.wscopes)
		nss := 0
		for r := rs; len(r) > 0; {
			num, typ, ss, n := otlpwire.ConsumeField(r)
			if n < 0 {
				return false
			}
			field := r[:n]
			r = r[n:]
			if num != otlpwire.FieldResourceSpansScopeSpans {
				if num == otlpwire.FieldResourceSpansDeprecatedScopeSpans {
					return false // pdata moved these into scope_spans
				}
				b.resOther = append(b.resOther, field...) // resource, schema URL
				continue
			}
			if typ != protowire.BytesType || nss == sss.Len() {
				return false
			}
			spans := sss.At(nss).Spans()
			nss++
			sc := [2]int{len(b.scopeOther), 0}
			nsp := 0
			var last []byte
			for s := ss; len(s) > 0; {
				var field, sp []byte
				if len(s) > 2 && s[0] == spansTag && (s[1] < 0x80 || s[2] < 0x80) {
					// A span of up to 16 KiB, its tag and length read here: through
					// ConsumeField, this walk was most of indexWire's cost.
					l, h := int(s[1]), 2
					if l >= 0x80 {
						l, h = l&0x7f|int(s[2])<<7, 3
					}
					if l > len(s)-h {
						return false
					}
					field, sp, s = s[:h+l], s[h:h+l], s[h+l:]
				} else {
					num, typ, v, n := otlpwire.ConsumeField(s)
					if n < 0 {
						return false
					}
					field, sp, s = s[:n], v, s[n:]
					if num != otlpwire.FieldScopeSpansSpans {
						b.scopeOther = append(b.scopeOther, field...) // scope, schema URL
						continue
					}
					if typ != protowire.BytesType {
						return false
					}
				}
				if nsp == spans.Len() {
					return false
				}
				// The IDs of a scope's first span, of every eighth and (below) of its
				// last: reading the others' would cost a cache miss each (the bytes
				// were read a while ago) for no more certainty against a request
				// that is not the batch's, while the config is what rules out a
				// processor changing spans.
				if nsp%8 == 0 && !sameIDs(sp, spans.At(nsp)) {
					return false
				}
				last = sp
				nsp++
				b.wspans = append(b.wspans, field)
			}
			if nsp != spans.Len() || nsp > 0 && !sameIDs(last, spans.At(nsp-1)) {
				return false
			}
			sc[1] = len(b.scopeOther)
			b.wscopes = append(b.wscopes, wireScope{scope: sc, first: len(b.wspans) - nsp, n: nsp})
		}
		if nss != sss.Len() {
			return false
		}
		res[1] = len(b.resOther)
		for i := first; i < len(b.wscopes); i++ {
			b.wscopes[i].res = res
		}
	}
	return nrs == rss.Len()
}

// sameIDs reports whether the encoded span sp has ps's trace and span IDs. Encoders
// differ in where they put them: Go's protobuf (the SDKs' exporters) writes fields in
// number order, the IDs first; pdata writes them last to first, the IDs last. Both are
// checked in place first; a span encoded otherwise has its fields stepped over.
func sameIDs(sp []byte, ps ptrace.Span) bool {
	tid, sid := ps.TraceID(), ps.SpanID()
	const idsLen = 2 + 16 + 2 + 8
	if len(sp) >= idsLen {
		if h := sp[:idsLen]; h[0] == 0x0a && h[1] == 16 && h[18] == 0x12 && h[19] == 8 {
			// trace_id, span_id, first
			return [16]byte(h[2:18]) == tid && [8]byte(h[20:]) == sid
		}
		if t := sp[len(sp)-idsLen:]; t[0] == 0x12 && t[1] == 8 && t[10] == 0x0a && t[11] == 16 {
			// span_id, trace_id, last
			return [8]byte(t[2:10]) == sid && [16]byte(t[12:]) == tid
		}
	}
	return sameIDsWalk(sp, tid, sid)
}

// sameIDsWalk is sameIDs for a span encoded with its IDs elsewhere: every field of the
// span is stepped over, by hand, one-byte tags and lengths first.
func sameIDsWalk(sp []byte, tid pcommon.TraceID, sid pcommon.SpanID) bool {
	var gotT, gotS []byte
	i := 0
	for i < len(sp) {
		key := uint64(sp[i])
		i++
		if key >= 0x80 {
			v, n := protowire.ConsumeVarint(sp[i-1:])
			if n < 0 {
				return false
			}
			key, i = v, i-1+n
		}
		switch protowire.Type(key & 7) {
		case protowire.VarintType:
			for {
				if i >= len(sp) {
					return false
				}
				i++
				if sp[i-1] < 0x80 {
					break
				}
			}
		case protowire.Fixed64Type:
			i += 8
		case protowire.Fixed32Type:
			i += 4
		case protowire.BytesType:
			if i >= len(sp) {
				return false
			}
			l := uint64(sp[i])
			i++
			if l >= 0x80 {
				v, n := protowire.ConsumeVarint(sp[i-1:])
				if n < 0 {
					return false
				}
				l, i = v, i-1+n
			}
			if l > uint64(len(sp)-i) {
				return false
			}
			switch protowire.Number(key >> 3) {
			case otlpwire.FieldSpanTraceID:
				gotT = sp[i : i+int(l)]
			case otlpwire.FieldSpanSpanID:
				gotS = sp[i : i+int(l)]
			}
			i += int(l)
		default:
			return false // groups: not in OTLP
		}
	}
	if i != len(sp) || gotT == nil && !tid.IsEmpty() || gotS == nil && !sid.IsEmpty() {
		return false
	}
	return (gotT == nil || bytes.Equal(gotT, tid[:])) && (gotS == nil || bytes.Equal(gotS, sid[:]))
}

// heldBits is b.heldIdx as a bitmap over the request's spans, in b.keepBits.
func (b *tailBatch) heldBits() []uint64 {
	bits := b.keepBits[:0]
	for range (len(b.wspans) + 63) / 64 {
		bits = append(bits, 0)
	}
	for _, i := range b.heldIdx {
		bits[i/64] |= 1 << (i % 64)
	}
	b.keepBits = bits
	return bits
}

// settleRaw makes the batch's held batch, still the request's bytes, last beyond the
// call: when its held spans make most of the buffer the request is in, the buffer is
// kept whole (otlpbody.Retain: no copy, and the door reuses it only once the batch is
// freed); otherwise the held spans, with their resources and scopes, are copied into a
// buffer of their own (recycled from freed batches).
func (b *tailBatch) settleRaw(ctx context.Context, hb *heldBatch) {
	if b.heldBytes >= cap(b.body)*3/4 {
		if release, ok := otlpbody.Retain(ctx); ok {
			hb.keep = slices.Clone(hb.keep)
			hb.release = release
			return
		}
	}
	data := b.t.room(b.heldBytes + len(b.wscopes)*64 + len(b.resOther) + len(b.scopeOther))
	j := 0 // into b.heldIdx, which is in walk order
	for _, sc := range b.wscopes {
		from := j
		for j < len(b.heldIdx) && int(b.heldIdx[j]) < sc.first+sc.n {
			j++
		}
		if j > from {
			data = b.appendHeldScope(data, sc, b.heldIdx[from:j])
		}
	}
	if len(data) < cap(data)*3/4 {
		// A recycled buffer much larger than needed: an exact copy, and the
		// buffer goes back for another batch.
		exact := bytes.Clone(data)
		b.t.recycle(data)
		data = exact
	}
	hb.data, hb.keep = data, nil
}

// appendHeldScope appends to w one scope of the request with its held spans (walk
// indexes idx), copied: one resource and scope copy per scope, as heldScope makes for
// pdata.
func (b *tailBatch) appendHeldScope(w []byte, sc wireScope, idx []uint32) []byte {
	ro := b.resOther[sc.res[0]:sc.res[1]]
	so := b.scopeOther[sc.scope[0]:sc.scope[1]]
	ssLen := len(so)
	for _, i := range idx {
		ssLen += len(b.wspans[i])
	}
	rsLen := len(ro) + protowire.SizeTag(otlpwire.FieldResourceSpansScopeSpans) + protowire.SizeBytes(ssLen)
	w = protowire.AppendTag(w, otlpwire.FieldTracesDataResourceSpans, protowire.BytesType)
	w = protowire.AppendVarint(w, uint64(rsLen))
	w = append(w, ro...)
	w = protowire.AppendTag(w, otlpwire.FieldResourceSpansScopeSpans, protowire.BytesType)
	w = protowire.AppendVarint(w, uint64(ssLen))
	w = append(w, so...)
	for _, i := range idx {
		w = append(w, b.wspans[i]...)
	}
	return w
}

// cutHeld appends to dst the held spans of the traces in want (those keep marks by
// walk index, or every span when keep is nil) in the encoded TracesData data, as an
// encoded TracesData with one resource and scope copy per scope that has some (as
// appendHeldScope lays them out), and adds each trace's spans to counts. One walk
// serves every trace a batch's keeps find in the held batch: walking a 1,000-span
// request once per kept trace cost a microsecond per span of the batch where a tenth of
// the traces erred (BenchmarkTailErrorsAcrossBatches).
func cutHeld(dst, data []byte, keep []uint64, want *traceSet, counts []int) ([]byte, int, error) {
	spans, idx := 0, 0
	var ro, ss []byte
	for b := data; len(b) > 0; {
		num, typ, rs, n := otlpwire.ConsumeField(b)
		if n < 0 {
			return dst, 0, otlpwire.ErrMalformed
		}
		b = b[n:]
		if num != otlpwire.FieldTracesDataResourceSpans || typ != protowire.BytesType {
			continue
		}
		ro = ro[:0]
		for r := rs; len(r) > 0; {
			num, _, _, n := otlpwire.ConsumeField(r)
			if n < 0 {
				return dst, 0, otlpwire.ErrMalformed
			}
			if num != otlpwire.FieldResourceSpansScopeSpans {
				ro = append(ro, r[:n]...)
			}
			r = r[n:]
		}
		for r := rs; len(r) > 0; {
			num, typ, scope, n := otlpwire.ConsumeField(r)
			r = r[n:]
			if num != otlpwire.FieldResourceSpansScopeSpans || typ != protowire.BytesType {
				continue
			}
			ss = ss[:0]
			for s := scope; len(s) > 0; {
				num, _, _, n := otlpwire.ConsumeField(s)
				if n < 0 {
					return dst, 0, otlpwire.ErrMalformed
				}
				if num != otlpwire.FieldScopeSpansSpans {
					ss = append(ss, s[:n]...)
				}
				s = s[n:]
			}
			matched := 0
			for s := scope; len(s) > 0; {
				num, typ, sp, n := otlpwire.ConsumeField(s)
				field := s[:n]
				s = s[n:]
				if num != otlpwire.FieldScopeSpansSpans || typ != protowire.BytesType {
					continue
				}
				i := idx
				idx++
				if keep != nil && keep[i/64]&(1<<(i%64)) == 0 {
					continue
				}
				id, err := otlpwire.SpanTraceID(sp)
				if err != nil {
					return dst, 0, err
				}
				if k := want.index(id); k >= 0 {
					ss = append(ss, field...)
					matched++
					counts[k]++
				}
			}
			if matched == 0 {
				continue
			}
			spans += matched
			rsLen := len(ro) + protowire.SizeTag(otlpwire.FieldResourceSpansScopeSpans) + protowire.SizeBytes(len(ss))
			dst = protowire.AppendTag(dst, otlpwire.FieldTracesDataResourceSpans, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(rsLen))
			dst = append(dst, ro...)
			dst = protowire.AppendTag(dst, otlpwire.FieldResourceSpansScopeSpans, protowire.BytesType)
			dst = protowire.AppendBytes(dst, ss)
		}
	}
	return dst, spans, nil
}

// eraseHeldTH erases th from the spans of td, cut from a held batch copied from its
// request: what eraseTH did to the spans held as pdata when they were held.
func eraseHeldTH(td ptrace.Traces) {
	var buf [512]byte
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				eraseTH(sp, sp.TraceState().AsRaw(), buf[:0])
			}
		}
	}
}
