package ingest

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/spoortrace/spoor/internal/otlpbody"
)

// Limits bound what one request may hold. A request past any of them is refused whole
// with InvalidArgument (HTTP 400) naming the limit, and its spans are counted in
// spoor_ingest_rejected_spans by reason; 0 turns a limit off.
type Limits struct {
	// MaxSpansPerRequest bounds the spans of one request.
	MaxSpansPerRequest int `mapstructure:"max_spans_per_request"`
	// MaxAttributesPerSpan bounds a span's own attributes (not its resource's, events'
	// or links').
	MaxAttributesPerSpan int `mapstructure:"max_attributes_per_span"`
	// MaxAttributeBytes bounds the length of every attribute key and string or bytes
	// value — of spans, resources, scopes, events and links, nested values included.
	MaxAttributeBytes int `mapstructure:"max_attribute_bytes"`
}

// defaultLimits are generous for instrumented code (the OTel SDKs keep 128 attributes
// per span by default) and stop what no tracing backend should store.
func defaultLimits() Limits {
	return Limits{MaxSpansPerRequest: 100_000, MaxAttributesPerSpan: 1024, MaxAttributeBytes: 64 << 10}
}

func (l Limits) validate() error {
	if l.MaxSpansPerRequest < 0 || l.MaxAttributesPerSpan < 0 || l.MaxAttributeBytes < 0 {
		return fmt.Errorf("limits must not be negative: %+v", l)
	}
	return nil
}

var (
	reasonTooManySpans      = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "too_many_spans")))
	reasonTooManyAttributes = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "too_many_attributes")))
	reasonAttributeTooLong  = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "attribute_too_long")))
)

// limitError is a request past a limit, with the counter reason it falls under.
type limitError struct {
	reason metric.MeasurementOption
	msg    string
}

func (e *limitError) Error() string { return e.msg }

// checkLimits finds the first limit the request breaks, or returns nil.
//
// prioritySeen is false when the walk read the key of every span attribute and none was
// sampling.priority (true when one was, or when the limits did not need the keys read).
func (l Limits) checkLimits(td ptrace.Traces) (prioritySeen bool, _ *limitError) {
	if l.MaxSpansPerRequest > 0 {
		if n := td.SpanCount(); n > l.MaxSpansPerRequest {
			return true, &limitError{reasonTooManySpans, fmt.Sprintf("request holds %d spans, more than the limit of %d per request: send smaller batches", n, l.MaxSpansPerRequest)}
		}
	}
	if l.MaxAttributesPerSpan == 0 && l.MaxAttributeBytes == 0 {
		return true, nil
	}
	// Span attribute keys are read only when MaxAttributeBytes is set.
	prioritySeen = l.MaxAttributeBytes == 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if e := l.checkMap(rs.Resource().Attributes(), "resource", nil); e != nil {
			return true, e
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			if e := l.checkMap(ss.Scope().Attributes(), "scope", nil); e != nil {
				return true, e
			}
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				if e := l.checkSpan(spans.At(k), &prioritySeen); e != nil {
					return true, e
				}
			}
		}
	}
	return prioritySeen, nil
}

// checkSpan checks sp; when it reads sp's attribute keys, it sets *prio if one is
// sampling.priority.
func (l Limits) checkSpan(sp ptrace.Span, prio *bool) *limitError {
	attrs := sp.Attributes()
	if l.MaxAttributesPerSpan > 0 && attrs.Len() > l.MaxAttributesPerSpan {
		return &limitError{reasonTooManyAttributes, fmt.Sprintf("span %s (%q) of trace %s has %d attributes, more than the limit of %d",
			sp.SpanID(), truncateName(sp.Name()), sp.TraceID(), attrs.Len(), l.MaxAttributesPerSpan)}
	}
	if l.MaxAttributeBytes == 0 {
		return nil
	}
	where := func() string {
		return fmt.Sprintf("span %s (%q) of trace %s", sp.SpanID(), truncateName(sp.Name()), sp.TraceID())
	}
	if e := l.checkMap(attrs, "", prio); e != nil {
		e.msg = where() + ": " + e.msg
		return e
	}
	events := sp.Events()
	for i := 0; i < events.Len(); i++ {
		if e := l.checkMap(events.At(i).Attributes(), "event", nil); e != nil {
			e.msg = where() + ": " + e.msg
			return e
		}
	}
	links := sp.Links()
	for i := 0; i < links.Len(); i++ {
		if e := l.checkMap(links.At(i).Attributes(), "link", nil); e != nil {
			e.msg = where() + ": " + e.msg
			return e
		}
	}
	return nil
}

// checkMap checks every key and value of m against MaxAttributeBytes, and sets *prio,
// when prio is not nil, if a key is sampling.priority.
func (l Limits) checkMap(m pcommon.Map, owner string, prio *bool) *limitError {
	if l.MaxAttributeBytes == 0 || m.Len() == 0 {
		return nil
	}
	var found *limitError
	m.Range(func(k string, v pcommon.Value) bool {
		if prio != nil && len(k) == len(otlpbody.SamplingPriorityKey) && k == otlpbody.SamplingPriorityKey {
			*prio = true
		}
		if len(k) > l.MaxAttributeBytes {
			found = l.tooLong(owner, "key", truncateName(k), len(k))
			return false
		}
		if n := l.longestValue(v, 0); n > l.MaxAttributeBytes {
			found = l.tooLong(owner, "value", truncateName(k), n)
			return false
		}
		return true
	})
	return found
}

func (l Limits) tooLong(owner, part, key string, n int) *limitError {
	if owner != "" {
		owner += " "
	}
	return &limitError{reasonAttributeTooLong, fmt.Sprintf("%sattribute %q has a %s of %d bytes, more than the limit of %d",
		owner, key, part, n, l.MaxAttributeBytes)}
}

// longestValue is the length of v's longest string or bytes, nested values included;
// as soon as one is over the limit it returns that one. Nesting deeper than pdata's
// decoders allow cannot arrive, but depth is bounded anyway.
func (l Limits) longestValue(v pcommon.Value, depth int) int {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return len(v.Str())
	case pcommon.ValueTypeBytes:
		return v.Bytes().Len()
	case pcommon.ValueTypeSlice:
		if depth > 64 {
			return 0
		}
		longest := 0
		s := v.Slice()
		for i := 0; i < s.Len() && longest <= l.MaxAttributeBytes; i++ {
			longest = max(longest, l.longestValue(s.At(i), depth+1))
		}
		return longest
	case pcommon.ValueTypeMap:
		if depth > 64 {
			return 0
		}
		longest := 0
		v.Map().Range(func(k string, mv pcommon.Value) bool {
			longest = max(longest, len(k), l.longestValue(mv, depth+1))
			return longest <= l.MaxAttributeBytes
		})
		return longest
	}
	return 0
}

// truncateName keeps names in error messages short.
func truncateName(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
