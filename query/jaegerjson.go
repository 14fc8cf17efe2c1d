package query

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// This file turns ptrace.Traces into the Jaeger UI trace JSON (Jaeger's
// internal/uimodel): the mapping of the contrib translator pkg/translator/jaeger
// (ProtoFromTraces) followed by Jaeger's uimodel converter, written straight into a byte
// buffer with no intermediate model. Differences from Jaeger, each on purpose:
//   - flags carries the W3C trace flags of the span (1 = sampled); the contrib translator
//     drops them, which leaves the UI with no sampled bit at all;
//   - scope attributes become span tags after otel.scope.name/otel.scope.version, where
//     the translator drops them;
//   - a resource without service.name gets the translator's "OTLPResourceNoServiceName"
//     even when it has other attributes (the translator then leaves the name empty, which
//     the UI cannot show or search);
//   - NaN and infinite doubles are written as strings (see appendJSONFloat);
//   - a span ending before it starts gets duration 0 rather than a wrapped-around uint64.

// Tag keys and values the Jaeger translator adds (semconv and tracetranslator constants).
const (
	tagSpanKind          = "span.kind"
	tagStatusCode        = "otel.status_code"
	tagStatusDescription = "otel.status_description"
	tagError             = "error"
	tagScopeName         = "otel.scope.name"
	tagScopeVersion      = "otel.scope.version"
	tagTraceState        = "w3c.tracestate"
	fieldEvent           = "event"
	attrServiceName      = "service.name"
	attrRefType          = "opentracing.ref_type"
	refTypeChildOfValue  = "child_of"
	noServiceName        = "OTLPResourceNoServiceName"
)

// spanAt locates one span inside a ptrace.Traces without copying it.
type spanAt struct {
	rs, ss int
	span   ptrace.Span
	start  pcommon.Timestamp
}

// jaegerConverter carries scratch space between traces of one response, so a search
// result of a hundred traces reuses one set of slices and one process table.
type jaegerConverter struct {
	spans []spanAt
	// procJSON is the encoded process of each ResourceSpans, computed once per resource;
	// two resources with the same encoding share a process ID, as in Jaeger.
	procJSON [][]byte
	procIDs  []int
	// procs lists distinct processes in order of first appearance; pN is procs[N-1].
	procs      [][]byte
	procByJSON map[string]int
	// warnings are the adjusters' span warnings for the next appendTrace, by span ID.
	warnings map[pcommon.SpanID][]string
}

// appendTrace appends the Jaeger UI JSON of td, which holds the spans of one trace. Unless
// raw, spans are ordered by start time (Jaeger's sort adjuster) and links with an empty
// trace or span ID are dropped (its span-links adjuster). td is only read.
func (cv *jaegerConverter) appendTrace(dst []byte, td ptrace.Traces, raw bool) []byte {
	cv.collect(td)
	if !raw {
		slices.SortStableFunc(cv.spans, func(a, b spanAt) int {
			if c := cmp.Compare(a.start, b.start); c != 0 {
				return c
			}
			ia, ib := a.span.SpanID(), b.span.SpanID()
			return bytes.Compare(ia[:], ib[:])
		})
	}

	dst = append(dst, `{"traceID":`...)
	if len(cv.spans) > 0 {
		dst = append(dst, '"')
		dst = appendTraceID(dst, cv.spans[0].span.TraceID())
		dst = append(dst, '"')
	} else {
		dst = append(dst, `""`...)
	}
	dst = append(dst, `,"spans":[`...)
	rss := td.ResourceSpans()
	for i, s := range cv.spans {
		if i > 0 {
			dst = append(dst, ',')
		}
		rs := rss.At(s.rs)
		pid := cv.processID(s.rs, rs.Resource())
		dst = appendSpan(dst, s.span, rs.ScopeSpans().At(s.ss).Scope(), pid, raw, cv.warnings[s.span.SpanID()])
	}
	dst = append(dst, `],"processes":{`...)
	for i, p := range cv.procs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"p`...)
		dst = strconv.AppendInt(dst, int64(i+1), 10)
		dst = append(dst, `":`...)
		dst = append(dst, p...)
	}
	return append(dst, `},"warnings":null}`...)
}

func (cv *jaegerConverter) collect(td ptrace.Traces) {
	cv.spans = cv.spans[:0]
	cv.procs = cv.procs[:0]
	clear(cv.procByJSON)
	rss := td.ResourceSpans()
	cv.procIDs = slices.Grow(cv.procIDs[:0], rss.Len())[:rss.Len()]
	for i := range cv.procIDs {
		cv.procIDs[i] = 0
	}
	if len(cv.procJSON) < rss.Len() {
		cv.procJSON = append(cv.procJSON, make([][]byte, rss.Len()-len(cv.procJSON))...)
	}
	for i := 0; i < rss.Len(); i++ {
		cv.procJSON[i] = cv.procJSON[i][:0]
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				cv.spans = append(cv.spans, spanAt{rs: i, ss: j, span: sp, start: sp.StartTimestamp()})
			}
		}
	}
}

// processID returns the 1-based ID of the process of resource rs, assigning the next one
// the first time an encoding is seen.
func (cv *jaegerConverter) processID(rs int, res pcommon.Resource) int {
	if id := cv.procIDs[rs]; id != 0 {
		return id
	}
	p := appendProcess(cv.procJSON[rs][:0], res)
	cv.procJSON[rs] = p
	id := cv.lookupProcess(p)
	if id == 0 {
		cv.procs = append(cv.procs, p)
		id = len(cv.procs)
	}
	cv.procIDs[rs] = id
	return id
}

// procScanLimit: up to this many distinct processes a linear scan finds duplicates
// without allocating; past it (a trace fanning out over many pods) a map keeps the
// lookup from going quadratic.
const procScanLimit = 16

func (cv *jaegerConverter) lookupProcess(p []byte) int {
	if len(cv.procs) <= procScanLimit {
		for i, q := range cv.procs {
			if bytes.Equal(p, q) {
				return i + 1
			}
		}
		return 0
	}
	if cv.procByJSON == nil {
		cv.procByJSON = make(map[string]int, 2*procScanLimit)
	}
	// procs are distinct, so the map holds exactly a prefix of them: add the rest.
	for i := len(cv.procByJSON); i < len(cv.procs); i++ {
		cv.procByJSON[string(cv.procs[i])] = i + 1
	}
	return cv.procByJSON[string(p)]
}

// appendProcess appends {"serviceName":…,"tags":[…]}: service.name, and every other
// resource attribute as a tag.
func appendProcess(dst []byte, res pcommon.Resource) []byte {
	attrs := res.Attributes()
	name := noServiceName
	if v, ok := attrs.Get(attrServiceName); ok {
		// The translator takes Str(): a non-string service.name yields "". Keep the
		// placeholder instead, which the UI can show and search.
		if s := v.Str(); s != "" {
			name = s
		}
	}
	dst = append(dst, `{"serviceName":`...)
	dst = appendJSONString(dst, name)
	dst = append(dst, `,"tags":[`...)
	first := true
	for k, v := range attrs.All() {
		if k == attrServiceName {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendTag(dst, k, v)
	}
	return append(dst, "]}"...)
}

func appendSpan(dst []byte, sp ptrace.Span, scope pcommon.InstrumentationScope, pid int, raw bool, warnings []string) []byte {
	traceID := sp.TraceID()
	dst = append(dst, `{"traceID":"`...)
	dst = appendTraceID(dst, traceID)
	dst = append(dst, `","spanID":"`...)
	spanID := sp.SpanID()
	dst = appendHex(dst, spanID[:])
	dst = append(dst, '"')
	// The low byte of OTLP span flags is the W3C trace-flags byte; its sampled bit is
	// Jaeger's sampled flag. The upper bits (parent is remote) mean nothing to Jaeger.
	if flags := sp.Flags() & 0xff; flags != 0 {
		dst = append(dst, `,"flags":`...)
		dst = strconv.AppendUint(dst, uint64(flags), 10)
	}
	dst = append(dst, `,"operationName":`...)
	dst = appendJSONString(dst, sp.Name())
	dst = append(dst, `,"references":`...)
	dst = appendReferences(dst, sp, raw)
	start, end := uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp())
	dst = append(dst, `,"startTime":`...)
	dst = strconv.AppendUint(dst, start/1000, 10)
	dst = append(dst, `,"duration":`...)
	var dur uint64
	if end > start {
		dur = (end - start) / 1000
	}
	dst = strconv.AppendUint(dst, dur, 10)
	dst = append(dst, `,"tags":`...)
	dst = appendSpanTags(dst, sp, scope)
	dst = append(dst, `,"logs":`...)
	dst = appendLogs(dst, sp.Events())
	dst = append(dst, `,"processID":"p`...)
	dst = strconv.AppendInt(dst, int64(pid), 10)
	if warnings == nil {
		return append(dst, `","warnings":null}`...)
	}
	dst = append(dst, `","warnings":`...)
	dst = appendJSONStrings(dst, warnings)
	return append(dst, '}')
}

// appendReferences writes the parent as CHILD_OF first (backends look for the first
// CHILD_OF), then each link as FOLLOWS_FROM, or CHILD_OF when the link says so with
// opentracing.ref_type; a link to the parent itself only retypes the parent reference.
func appendReferences(dst []byte, sp ptrace.Span, raw bool) []byte {
	traceID, parent := sp.TraceID(), sp.ParentSpanID()
	links := sp.Links()
	dst = append(dst, '[')
	n := 0
	if !parent.IsEmpty() {
		refType := "CHILD_OF"
		for i := 0; i < links.Len(); i++ {
			l := links.At(i)
			if l.TraceID() == traceID && l.SpanID() == parent {
				refType = linkRefType(l)
			}
		}
		dst = appendReference(dst, refType, traceID, parent)
		n++
	}
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		if !parent.IsEmpty() && l.TraceID() == traceID && l.SpanID() == parent {
			continue
		}
		if !raw && (l.TraceID().IsEmpty() || l.SpanID().IsEmpty()) {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = appendReference(dst, linkRefType(l), l.TraceID(), l.SpanID())
		n++
	}
	return append(dst, ']')
}

func linkRefType(l ptrace.SpanLink) string {
	if v, ok := l.Attributes().Get(attrRefType); ok && v.Str() == refTypeChildOfValue {
		return "CHILD_OF"
	}
	return "FOLLOWS_FROM"
}

func appendReference(dst []byte, refType string, traceID pcommon.TraceID, spanID pcommon.SpanID) []byte {
	dst = append(dst, `{"refType":"`...)
	dst = append(dst, refType...)
	dst = append(dst, `","traceID":"`...)
	dst = appendTraceID(dst, traceID)
	dst = append(dst, `","spanID":"`...)
	dst = appendHex(dst, spanID[:])
	return append(dst, `"}`...)
}

// appendSpanTags writes the span's tags in the translator's order: scope name and version
// (then, Spoor's addition, scope attributes), span attributes, span.kind, status code,
// error, status description, trace state.
func appendSpanTags(dst []byte, sp ptrace.Span, scope pcommon.InstrumentationScope) []byte {
	dst = append(dst, '[')
	n := len(dst)
	sep := func() {
		if len(dst) > n {
			dst = append(dst, ',')
		}
	}
	if s := scope.Name(); s != "" {
		sep()
		dst = appendStrTag(dst, tagScopeName, s)
	}
	if s := scope.Version(); s != "" {
		sep()
		dst = appendStrTag(dst, tagScopeVersion, s)
	}
	for k, v := range scope.Attributes().All() {
		sep()
		dst = appendTag(dst, k, v)
	}
	for k, v := range sp.Attributes().All() {
		sep()
		dst = appendTag(dst, k, v)
	}
	if kind := spanKindTag(sp.Kind()); kind != "" {
		sep()
		dst = appendStrTag(dst, tagSpanKind, kind)
	}
	switch sp.Status().Code() {
	case ptrace.StatusCodeOk:
		sep()
		dst = appendStrTag(dst, tagStatusCode, "OK")
	case ptrace.StatusCodeError:
		sep()
		dst = appendStrTag(dst, tagStatusCode, "ERROR")
		sep()
		dst = append(dst, `{"key":"error","type":"bool","value":true}`...)
	}
	if msg := sp.Status().Message(); msg != "" {
		sep()
		dst = appendStrTag(dst, tagStatusDescription, msg)
	}
	if ts := sp.TraceState().AsRaw(); ts != "" {
		sep()
		dst = appendStrTag(dst, tagTraceState, ts)
	}
	return append(dst, ']')
}

// spanKindTag is the OpenTracing span.kind value the translator writes; it tags internal
// spans too ("internal"), and only unspecified spans go without.
func spanKindTag(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	case ptrace.SpanKindInternal:
		return "internal"
	}
	return ""
}

// appendLogs writes events as logs: the event name as an "event" field first (unless an
// attribute already has that key), then the attributes.
func appendLogs(dst []byte, events ptrace.SpanEventSlice) []byte {
	dst = append(dst, '[')
	for i := 0; i < events.Len(); i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		ev := events.At(i)
		dst = append(dst, `{"timestamp":`...)
		dst = strconv.AppendUint(dst, uint64(ev.Timestamp())/1000, 10)
		dst = append(dst, `,"fields":[`...)
		attrs := ev.Attributes()
		n := 0
		if name := ev.Name(); name != "" {
			if _, clash := attrs.Get(fieldEvent); !clash {
				dst = appendStrTag(dst, fieldEvent, name)
				n++
			}
		}
		for k, v := range attrs.All() {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = appendTag(dst, k, v)
			n++
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, ']')
}

func appendStrTag(dst []byte, key, value string) []byte {
	dst = append(dst, `{"key":`...)
	dst = appendJSONString(dst, key)
	dst = append(dst, `,"type":"string","value":`...)
	dst = appendJSONString(dst, value)
	return append(dst, '}')
}

// appendTag writes one attribute as a typed Jaeger tag. Maps and slices become their JSON
// text as a string tag, as the translator does; an empty value is an empty string.
func appendTag(dst []byte, key string, v pcommon.Value) []byte {
	dst = append(dst, `{"key":`...)
	dst = appendJSONString(dst, key)
	switch v.Type() {
	case pcommon.ValueTypeBool:
		dst = append(dst, `,"type":"bool","value":`...)
		dst = strconv.AppendBool(dst, v.Bool())
	case pcommon.ValueTypeInt:
		dst = append(dst, `,"type":"int64","value":`...)
		dst = strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		dst = append(dst, `,"type":"float64","value":`...)
		dst = appendJSONFloat(dst, v.Double())
	case pcommon.ValueTypeBytes:
		dst = append(dst, `,"type":"binary","value":`...)
		dst = appendJSONBase64(dst, v.Bytes().AsRaw())
	case pcommon.ValueTypeStr:
		dst = append(dst, `,"type":"string","value":`...)
		dst = appendJSONString(dst, v.Str())
	default:
		dst = append(dst, `,"type":"string","value":`...)
		dst = appendJSONString(dst, v.AsString())
	}
	return append(dst, '}')
}
