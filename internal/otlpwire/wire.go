// Package otlpwire walks the protobuf encoding of OTLP TracesData without decoding it:
// the store splits a batch into trace-grouped chunks (Splitter) and cuts one trace (or a
// page's traces) out of a stored chunk, and the sampler one kept trace out of a sealed
// held batch, unmarshaling only those spans.
package otlpwire

import (
	"bytes"
	"errors"
	"math"
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// OTLP field numbers (opentelemetry/proto/trace/v1/trace.proto) that FilterTrace walks.
const (
	fieldTracesDataResourceSpans protowire.Number = 1 // TracesData.resource_spans
	fieldResourceSpansScopeSpans protowire.Number = 2 // ResourceSpans.scope_spans
	fieldScopeSpansSpans         protowire.Number = 2 // ScopeSpans.spans
	fieldSpanTraceID             protowire.Number = 1 // Span.trace_id
)

// The same field numbers, and the two more a reader that follows a request span for span
// needs, for callers walking the encoding themselves.
const (
	FieldTracesDataResourceSpans                            = fieldTracesDataResourceSpans
	FieldResourceSpansScopeSpans                            = fieldResourceSpansScopeSpans
	FieldResourceSpansDeprecatedScopeSpans protowire.Number = 1000 // instrumentation_library_spans, which pdata moves to scope_spans
	FieldScopeSpansSpans                                    = fieldScopeSpansSpans
	FieldSpanTraceID                                        = fieldSpanTraceID
	FieldSpanSpanID                        protowire.Number = 2 // Span.span_id
)

// ErrMalformed is returned for bytes that are not a well-formed OTLP TracesData.
var ErrMalformed = errors.New("not a well-formed OTLP TracesData")

// FilterTrace copies from the protobuf encoding of an OTLP TracesData (a block) only
// the spans of one trace, with their resources and scopes and every other field
// unchanged, and appends the result — again a TracesData — to dst.
//
// Unmarshaling a whole 512-span block to read one trace of 5 spans cost about 1 ms
// (pdata builds every span); stepping over the other spans' bytes costs a few
// microseconds, and only the trace's own spans are unmarshaled.
func FilterTrace(dst, raw []byte, id pcommon.TraceID) ([]byte, int, error) {
	spans := 0
	var rsBuf, ssBuf []byte
	occ := findOccurrences(raw, []pcommon.TraceID{id})
	for b := raw; len(b) > 0; {
		offB := len(raw) - len(b)
		num, typ, rs, n := ConsumeField(b)
		if n < 0 {
			return dst, 0, ErrMalformed
		}
		b = b[n:]
		if num != fieldTracesDataResourceSpans || typ != protowire.BytesType {
			continue // nothing else in a TracesData concerns one trace
		}
		offRS := offB + n - len(rs)
		rsBuf = rsBuf[:0]
		kept := 0
		for r := rs; len(r) > 0; {
			offR := offRS + len(rs) - len(r)
			num, typ, ss, n := ConsumeField(r)
			if n < 0 {
				return dst, 0, ErrMalformed
			}
			field := r[:n]
			r = r[n:]
			if num != fieldResourceSpansScopeSpans || typ != protowire.BytesType {
				rsBuf = append(rsBuf, field...) // resource, schema URL: kept as they are
				continue
			}
			offSS := offR + n - len(ss)
			ssBuf = ssBuf[:0]
			matched := 0
			for s := ss; len(s) > 0; {
				offS := offSS + len(ss) - len(s)
				num, typ, sp, n := ConsumeField(s)
				if n < 0 {
					return dst, 0, ErrMalformed
				}
				field := s[:n]
				s = s[n:]
				if num != fieldScopeSpansSpans || typ != protowire.BytesType {
					ssBuf = append(ssBuf, field...) // scope, schema URL
					continue
				}
				if !occ.mayHold(offS+n-len(sp), len(sp)) {
					continue
				}
				ok, err := SpanHasTraceID(sp, id)
				if err != nil {
					return dst, 0, err
				}
				if ok {
					ssBuf = append(ssBuf, field...)
					matched++
				}
			}
			if matched > 0 {
				rsBuf = protowire.AppendTag(rsBuf, fieldResourceSpansScopeSpans, protowire.BytesType)
				rsBuf = protowire.AppendBytes(rsBuf, ssBuf)
				kept += matched
			}
		}
		if kept > 0 {
			dst = protowire.AppendTag(dst, fieldTracesDataResourceSpans, protowire.BytesType)
			dst = protowire.AppendBytes(dst, rsBuf)
			spans += kept
		}
	}
	return dst, spans, nil
}

// ConsumeField reads one field; for a length-delimited field, val is its content.
func ConsumeField(b []byte) (protowire.Number, protowire.Type, []byte, int) {
	num, typ, n := protowire.ConsumeTag(b)
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

// SpanHasTraceID reports whether an encoded Span has the trace ID; an encoded span with
// no trace ID field (a slot emptied before encoding) matches nothing.
func SpanHasTraceID(sp []byte, id pcommon.TraceID) (bool, error) {
	v, ok, err := spanTraceIDField(sp)
	if err != nil || !ok {
		return false, err
	}
	return bytes.Equal(v, id[:]), nil
}

// traceCut is one trace's share of a block being cut by FilterTraces.
type traceCut struct {
	out, rs, ss []byte
	spans       int
	inRS, inSS  bool
}

// FilterTraces is FilterTrace for several traces at once: one walk over the block
// instead of one per trace. It returns, for each wanted trace with spans in the block,
// a TracesData holding only its spans (with their resources and scopes).
func FilterTraces(raw []byte, want []pcommon.TraceID) (map[pcommon.TraceID][]byte, error) {
	cuts := make(map[pcommon.TraceID]*traceCut, len(want))
	for _, id := range want {
		cuts[id] = &traceCut{}
	}
	var rsOther, ssOther []byte
	var touchedRS, touchedSS []*traceCut
	occ := findOccurrences(raw, want)
	for b := raw; len(b) > 0; {
		offB := len(raw) - len(b)
		num, typ, rs, n := ConsumeField(b)
		if n < 0 {
			return nil, ErrMalformed
		}
		b = b[n:]
		if num != fieldTracesDataResourceSpans || typ != protowire.BytesType {
			continue
		}
		offRS := offB + n - len(rs)
		rsOther, touchedRS = rsOther[:0], touchedRS[:0]
		for r := rs; len(r) > 0; {
			offR := offRS + len(rs) - len(r)
			num, typ, ss, n := ConsumeField(r)
			if n < 0 {
				return nil, ErrMalformed
			}
			field := r[:n]
			r = r[n:]
			if num != fieldResourceSpansScopeSpans || typ != protowire.BytesType {
				rsOther = append(rsOther, field...)
				continue
			}
			offSS := offR + n - len(ss)
			ssOther, touchedSS = ssOther[:0], touchedSS[:0]
			for s := ss; len(s) > 0; {
				offS := offSS + len(ss) - len(s)
				num, typ, sp, n := ConsumeField(s)
				if n < 0 {
					return nil, ErrMalformed
				}
				field := s[:n]
				s = s[n:]
				if num != fieldScopeSpansSpans || typ != protowire.BytesType {
					ssOther = append(ssOther, field...)
					continue
				}
				if !occ.mayHold(offS+n-len(sp), len(sp)) {
					continue
				}
				id, err := SpanTraceID(sp)
				if err != nil {
					return nil, err
				}
				c := cuts[id]
				if c == nil {
					continue
				}
				if !c.inSS {
					c.inSS, c.ss = true, c.ss[:0]
					touchedSS = append(touchedSS, c)
				}
				c.ss = append(c.ss, field...)
				c.spans++
			}
			// Other fields of the scope (its scope, schema URL) may follow its spans in
			// the encoding: they are added once the scope has been read whole.
			for _, c := range touchedSS {
				if !c.inRS {
					c.inRS, c.rs = true, c.rs[:0]
					touchedRS = append(touchedRS, c)
				}
				c.rs = protowire.AppendTag(c.rs, fieldResourceSpansScopeSpans, protowire.BytesType)
				c.rs = protowire.AppendVarint(c.rs, uint64(len(ssOther)+len(c.ss)))
				c.rs = append(append(c.rs, ssOther...), c.ss...)
				c.inSS = false
			}
		}
		for _, c := range touchedRS {
			c.out = protowire.AppendTag(c.out, fieldTracesDataResourceSpans, protowire.BytesType)
			c.out = protowire.AppendVarint(c.out, uint64(len(rsOther)+len(c.rs)))
			c.out = append(append(c.out, rsOther...), c.rs...)
			c.inRS = false
		}
	}
	out := make(map[pcommon.TraceID][]byte, len(cuts))
	for id, c := range cuts {
		if c.spans > 0 {
			out[id] = c.out
		}
	}
	return out, nil
}

// maxScannedIDs is the most wanted trace IDs findOccurrences looks for. Finding a 16-byte
// ID in a 512-span block (bytes.Index, vectorized) costs about a tenth of reading every
// span's trace ID (spanTraceIDField); past a few IDs, reading them is cheaper.
const maxScannedIDs = 4

// occurrences are the offsets, ascending, at which wanted trace IDs' 16 bytes occur in a
// block: a span whose bytes hold none of them cannot be of a wanted trace, and is
// stepped over whole without reading its fields. Spans that hold one (a wanted trace's
// spans, and spans linking to it) have their trace ID read.
type occurrences struct {
	scanned bool // false: every span may hold one
	at      []int
	next    int
}

func findOccurrences(raw []byte, want []pcommon.TraceID) occurrences {
	if len(want) > maxScannedIDs {
		return occurrences{}
	}
	o := occurrences{scanned: true}
	for _, id := range want {
		for off := 0; ; {
			i := bytes.Index(raw[off:], id[:])
			if i < 0 {
				break
			}
			o.at = append(o.at, off+i)
			off += i + 1
		}
	}
	slices.Sort(o.at)
	return o
}

// mayHold reports whether the span raw[off:off+n] may be of a wanted trace: whether a
// wanted ID occurs inside it. Calls come in ascending off.
func (o *occurrences) mayHold(off, n int) bool {
	if !o.scanned {
		return true
	}
	for o.next < len(o.at) && o.at[o.next] < off {
		o.next++
	}
	return o.next < len(o.at) && o.at[o.next]+len(pcommon.TraceID{}) <= off+n
}

// SpanTraceID reads an encoded Span's trace ID (zero when it has none).
func SpanTraceID(sp []byte) (pcommon.TraceID, error) {
	var id pcommon.TraceID
	v, _, err := spanTraceIDField(sp)
	copy(id[:], v)
	return id, err
}

// spanTraceIDField returns the content of an encoded Span's trace_id field. pdata
// (v1.68) writes a message's fields in descending number order, so trace_id, field 1,
// comes last, after the attributes, events and links: every field before it is stepped
// over. That step is written out here — tag and length varints of one byte read inline,
// others through protowire — as it is most of the cost of cutting traces out of a block
// (protowire's ConsumeTag and ConsumeBytes, not inlined, were 30% of a flow's CPU).
// Encodings with trace_id first (earlier pdata versions) stop at once.
func spanTraceIDField(sp []byte) (v []byte, found bool, err error) {
	for i := 0; i < len(sp); {
		tag := uint64(sp[i])
		if tag < 0x80 {
			i++
		} else {
			t, n := protowire.ConsumeVarint(sp[i:])
			if n < 0 {
				return nil, false, ErrMalformed
			}
			tag, i = t, i+n
		}
		// protowire.ConsumeTag's bounds on the field number.
		if tag>>3 > math.MaxInt32 || tag>>3 < uint64(protowire.MinValidNumber) {
			return nil, false, ErrMalformed
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		switch typ {
		case protowire.BytesType:
			var l uint64
			if i < len(sp) && sp[i] < 0x80 {
				l, i = uint64(sp[i]), i+1
			} else {
				x, n := protowire.ConsumeVarint(sp[i:])
				if n < 0 {
					return nil, false, ErrMalformed
				}
				l, i = x, i+n
			}
			if l > uint64(len(sp)-i) {
				return nil, false, ErrMalformed
			}
			if num == fieldSpanTraceID {
				return sp[i : i+int(l)], true, nil
			}
			i += int(l)
		case protowire.VarintType:
			if i < len(sp) && sp[i] < 0x80 {
				i++
			} else {
				_, n := protowire.ConsumeVarint(sp[i:])
				if n < 0 {
					return nil, false, ErrMalformed
				}
				i += n
			}
		case protowire.Fixed64Type:
			if len(sp)-i < 8 {
				return nil, false, ErrMalformed
			}
			i += 8
		case protowire.Fixed32Type:
			if len(sp)-i < 4 {
				return nil, false, ErrMalformed
			}
			i += 4
		default: // groups, and invalid types
			m := protowire.ConsumeFieldValue(num, typ, sp[i:])
			if m < 0 {
				return nil, false, ErrMalformed
			}
			i += m
		}
	}
	return nil, false, nil
}
