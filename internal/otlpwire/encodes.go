package otlpwire

import (
	"bytes"

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
	for b := raw; len(b) > 0; {
		num, typ, v, n := ConsumeField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num != fieldScopeSpansSpans {
			continue
		}
		if typ != protowire.BytesType || k >= spans.Len() || !encodesSpan(v, spans.At(k)) {
			return false
		}
		k++
	}
	return k == spans.Len()
}

func encodesSpan(raw []byte, sp ptrace.Span) bool {
	var tid, sid, ts []byte
	var seenTID, seenSID, seenTS bool
	for b := raw; len(b) > 0; {
		num, typ, v, n := ConsumeField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case fieldSpanTraceID:
			if seenTID || typ != protowire.BytesType {
				return false
			}
			tid, seenTID = v, true
		case FieldSpanSpanID:
			if seenSID || typ != protowire.BytesType {
				return false
			}
			sid, seenSID = v, true
		case fieldSpanTraceState:
			if seenTS || typ != protowire.BytesType {
				return false
			}
			ts, seenTS = v, true
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
