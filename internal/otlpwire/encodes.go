package otlpwire

import (
	"bytes"
	"math"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

const fieldSpanTraceState protowire.Number = 3 // Span.trace_state

// Encodes reports whether raw, the protobuf encoding of an OTLP TracesData (or of an
// ExportTraceServiceRequest: the same fields), holds exactly td's resources, scopes and
// spans, in the same order, every span with td's trace ID, span ID and tracestate.
//
// It is the store's check before it keeps a request's own bytes instead of encoding
// td again (storageexporter): the processors a pipeline may run before the store are
// those that change no span or only drop spans and rewrite tracestates (the sampler),
// and this catches each of those. It reads every span's header fields, stepping over
// the rest; a message holding a field twice, or the deprecated
// instrumentation_library_spans, does not match (pdata would have merged it: the
// caller encodes td itself then).
func Encodes(raw []byte, td ptrace.Traces) bool {
	rss := td.ResourceSpans()
	ri := 0
	for b := raw; len(b) > 0; {
		num, typ, v, n := ConsumeField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num != fieldTracesDataResourceSpans {
			continue
		}
		if typ != protowire.BytesType || ri >= rss.Len() || !encodesResource(v, rss.At(ri)) {
			return false
		}
		ri++
	}
	return ri == rss.Len()
}

func encodesResource(raw []byte, rs ptrace.ResourceSpans) bool {
	sss := rs.ScopeSpans()
	si := 0
	for b := raw; len(b) > 0; {
		num, typ, v, n := ConsumeField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case FieldResourceSpansDeprecatedScopeSpans:
			return false
		case fieldResourceSpansScopeSpans:
			if typ != protowire.BytesType || si >= sss.Len() || !encodesScope(v, sss.At(si)) {
				return false
			}
			si++
		}
	}
	return si == sss.Len()
}

func encodesScope(raw []byte, ss ptrace.ScopeSpans) bool {
	spans := ss.Spans()
	k := 0
	for i := 0; i < len(raw); {
		num, typ, v0, v1, next := nextField(raw, i)
		if next < 0 {
			return false
		}
		i = next
		if num != fieldScopeSpansSpans {
			continue
		}
		if typ != protowire.BytesType || k >= spans.Len() || !encodesSpan(raw[v0:v1], spans.At(k)) {
			return false
		}
		k++
	}
	return k == spans.Len()
}

func encodesSpan(raw []byte, sp ptrace.Span) bool {
	var tid, sid, ts []byte
	var seenTID, seenSID, seenTS bool
	for i := 0; i < len(raw); {
		num, typ, v0, v1, next := nextField(raw, i)
		if next < 0 {
			return false
		}
		i = next
		if num > fieldSpanTraceState {
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		switch num {
		case fieldSpanTraceID:
			if seenTID {
				return false
			}
			tid, seenTID = raw[v0:v1], true
		case FieldSpanSpanID:
			if seenSID {
				return false
			}
			sid, seenSID = raw[v0:v1], true
		case fieldSpanTraceState:
			if seenTS {
				return false
			}
			ts, seenTS = raw[v0:v1], true
		}
	}
	// An absent ID field decodes as the empty ID, and pdata writes none for it.
	id, spanID := sp.TraceID(), sp.SpanID()
	if !(len(tid) == 0 && id.IsEmpty() || bytes.Equal(tid, id[:])) {
		return false
	}
	if !(len(sid) == 0 && spanID.IsEmpty() || bytes.Equal(sid, spanID[:])) {
		return false
	}
	return string(ts) == sp.TraceState().AsRaw()
}

// nextField reads the field at b[i:]: its number and type, where its value lies
// (b[v0:v1], for a length-delimited field its content), and where the next field starts
// (negative when the bytes are malformed). One-byte tags and lengths, nearly all of
// them in spans, are read inline: walking every field of every span through protowire's
// ConsumeField cost as much as encoding the spans again. spanTraceIDField has the same
// step written into its loop: a call per field (this one is too big to inline) doubled
// the cost of its walk, the most of cutting traces out of a block.
func nextField(b []byte, i int) (num protowire.Number, typ protowire.Type, v0, v1, next int) {
	tag := uint64(b[i])
	if tag < 0x80 {
		i++
	} else {
		t, n := protowire.ConsumeVarint(b[i:])
		if n < 0 {
			return 0, 0, 0, 0, -1
		}
		tag, i = t, i+n
	}
	if tag>>3 > math.MaxInt32 || tag>>3 < uint64(protowire.MinValidNumber) {
		return 0, 0, 0, 0, -1
	}
	num, typ = protowire.Number(tag>>3), protowire.Type(tag&7)
	switch typ {
	case protowire.BytesType:
		var l uint64
		if i < len(b) && b[i] < 0x80 {
			l, i = uint64(b[i]), i+1
		} else if i+1 < len(b) && b[i+1] < 0x80 { // spans of 128 bytes to 16 KiB
			l, i = uint64(b[i]&0x7f)|uint64(b[i+1])<<7, i+2
		} else {
			x, n := protowire.ConsumeVarint(b[i:])
			if n < 0 {
				return 0, 0, 0, 0, -1
			}
			l, i = x, i+n
		}
		if l > uint64(len(b)-i) {
			return 0, 0, 0, 0, -1
		}
		return num, typ, i, i + int(l), i + int(l)
	case protowire.VarintType:
		if i < len(b) && b[i] < 0x80 {
			return num, typ, i, i + 1, i + 1
		}
		_, n := protowire.ConsumeVarint(b[i:])
		if n < 0 {
			return 0, 0, 0, 0, -1
		}
		return num, typ, i, i + n, i + n
	case protowire.Fixed64Type:
		if len(b)-i < 8 {
			return 0, 0, 0, 0, -1
		}
		return num, typ, i, i + 8, i + 8
	case protowire.Fixed32Type:
		if len(b)-i < 4 {
			return 0, 0, 0, 0, -1
		}
		return num, typ, i, i + 4, i + 4
	}
	m := protowire.ConsumeFieldValue(num, typ, b[i:]) // groups; invalid types fail
	if m < 0 {
		return 0, 0, 0, 0, -1
	}
	return num, typ, i, i + m, i + m
}
