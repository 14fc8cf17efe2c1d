package query

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The adjusters Jaeger's query service runs on a trace before showing it, unless the
// request says raw=true (REFERENCE.md §3.2). Sorting and dropping empty links are done by
// the Jaeger converter itself (jaegerjson.go); this file holds the two that change span
// data:
//
//   - span ID uniquifier (Jaeger's zipkin_span_id_uniquifier): Zipkin clients by default
//     give the server side of a call the client span's ID ("shared" spans). Two spans
//     with one ID break every tree the UI draws, so the server span gets a fresh ID, the
//     client span becomes its parent, and the server span's children follow it;
//   - clock skew (Jaeger's clockskew adjuster): a child span recorded by another host
//     whose clock is off can start before its parent or end after it. When the child
//     lasted no longer than its parent but does not fit inside it, it is shifted to sit
//     in the middle of the parent, and the spans of the same host below it move with it.
//     A shift larger than the configured maximum is not applied; the span carries a
//     warning saying so instead.
//
// Spans of the same host share a clock. The host of a span is its resource's host.id,
// host.name, host.ip or ip attribute, or, when it has none, the resource itself: two
// processes of which nothing says they run on one machine are treated as two clocks.
//
// The stored trace is never modified: when an adjuster has work to do, it works on a copy.

// spanAdjustments is what the adjusters decided for one trace.
type spanAdjustments struct {
	// warnings per span ID (after uniquifying), as Jaeger's span warnings.
	warnings map[pcommon.SpanID][]string
}

// flatSpan is one span of a trace and the host key of its resource.
type flatSpan struct {
	span ptrace.Span
	host string
}

func flattenSpans(td ptrace.Traces, dst []flatSpan) []flatSpan {
	dst = dst[:0]
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		host := hostKey(rss.At(i).Resource())
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				dst = append(dst, flatSpan{span: spans.At(k), host: host})
			}
		}
	}
	return dst
}

// hostKey names the clock a resource's spans were timed with.
func hostKey(res pcommon.Resource) string {
	attrs := res.Attributes()
	for _, k := range []string{"host.id", "host.name", "host.ip", "ip"} {
		if v, ok := attrs.Get(k); ok && v.AsString() != "" {
			return k + "=" + v.AsString()
		}
	}
	return string(appendProcess(nil, res))
}

// adjustTrace returns td with the adjusters applied (td itself when nothing needed
// adjusting) and the warnings they left. maxSkew is the largest shift applied; zero or
// less turns the clock skew adjuster off.
func adjustTrace(td ptrace.Traces, maxSkew time.Duration) (ptrace.Traces, spanAdjustments) {
	spans := flattenSpans(td, nil)
	if !needsUniquifying(spans) && (maxSkew <= 0 || !needsSkewAdjusting(spans)) {
		return td, spanAdjustments{}
	}
	out := ptrace.NewTraces()
	td.CopyTo(out)
	spans = flattenSpans(out, spans)
	uniquifySpanIDs(spans)
	var adj spanAdjustments
	if maxSkew > 0 {
		adj.warnings = adjustClockSkew(spans, maxSkew)
	}
	return out, adj
}

// sharedIDs returns the span IDs that a server span shares with a client span.
func sharedIDs(spans []flatSpan) map[pcommon.SpanID]struct{} {
	var clients map[pcommon.SpanID]struct{}
	for _, s := range spans {
		if s.span.Kind() == ptrace.SpanKindClient {
			if clients == nil {
				clients = make(map[pcommon.SpanID]struct{})
			}
			clients[s.span.SpanID()] = struct{}{}
		}
	}
	var shared map[pcommon.SpanID]struct{}
	for _, s := range spans {
		if s.span.Kind() != ptrace.SpanKindServer {
			continue
		}
		if _, ok := clients[s.span.SpanID()]; ok {
			if shared == nil {
				shared = make(map[pcommon.SpanID]struct{})
			}
			shared[s.span.SpanID()] = struct{}{}
		}
	}
	return shared
}

func needsUniquifying(spans []flatSpan) bool { return len(sharedIDs(spans)) > 0 }

// uniquifySpanIDs gives each server span that shares its ID with a client span a new ID
// unused in the trace (counting up from the largest one, as Jaeger does), makes the
// client span its parent, and moves the shared ID's other children under it.
func uniquifySpanIDs(spans []flatSpan) {
	shared := sharedIDs(spans)
	if len(shared) == 0 {
		return
	}
	used := make(map[pcommon.SpanID]struct{}, len(spans))
	var maxID uint64
	for _, s := range spans {
		id := s.span.SpanID()
		used[id] = struct{}{}
		maxID = max(maxID, binary.BigEndian.Uint64(id[:]))
	}
	next := func() (pcommon.SpanID, bool) {
		for range 1 << 16 {
			maxID++
			var id pcommon.SpanID
			binary.BigEndian.PutUint64(id[:], maxID)
			if _, taken := used[id]; !taken && !id.IsEmpty() {
				used[id] = struct{}{}
				return id, true
			}
		}
		return pcommon.SpanID{}, false
	}
	oldToNew := make(map[pcommon.SpanID]pcommon.SpanID, len(shared))
	for _, s := range spans {
		old := s.span.SpanID()
		if _, ok := shared[old]; !ok || s.span.Kind() != ptrace.SpanKindServer {
			continue
		}
		if _, done := oldToNew[old]; done {
			// A second server span on the same client ID keeps it: Jaeger renames one.
			continue
		}
		id, ok := next()
		if !ok {
			return
		}
		oldToNew[old] = id
		s.span.SetParentSpanID(old)
		s.span.SetSpanID(id)
	}
	for _, s := range spans {
		if id, ok := oldToNew[s.span.ParentSpanID()]; ok && s.span.SpanID() != id {
			s.span.SetParentSpanID(id)
		}
	}
}

// skewNode is a span in the parent/child tree the clock skew adjuster walks.
type skewNode struct {
	s        flatSpan
	children []int
}

func buildSkewTree(spans []flatSpan) (nodes []skewNode, roots []int) {
	nodes = make([]skewNode, len(spans))
	index := make(map[pcommon.SpanID]int, len(spans))
	for i, s := range spans {
		nodes[i].s = s
		if _, dup := index[s.span.SpanID()]; !dup {
			index[s.span.SpanID()] = i
		}
	}
	for i, s := range spans {
		p, ok := index[s.span.ParentSpanID()]
		if s.span.ParentSpanID().IsEmpty() || !ok || p == i {
			roots = append(roots, i)
			continue
		}
		nodes[p].children = append(nodes[p].children, i)
	}
	return nodes, roots
}

// skewDelta is how far child must move to fit in parent: zero when it fits already or
// lasted longer than the parent (nothing sensible can be done then).
func skewDelta(child, parent ptrace.Span) time.Duration {
	ps, pe := int64(parent.StartTimestamp()), int64(parent.EndTimestamp())
	cs, ce := int64(child.StartTimestamp()), int64(child.EndTimestamp())
	pd, cd := pe-ps, ce-cs
	if cd > pd || pd < 0 || cd < 0 {
		return 0
	}
	if ps <= cs && ce <= pe {
		return 0
	}
	latency := (pd - cd) / 2
	return time.Duration(ps + latency - cs)
}

func needsSkewAdjusting(spans []flatSpan) bool {
	nodes, roots := buildSkewTree(spans)
	var walk func(i int) bool
	walk = func(i int) bool {
		for _, c := range nodes[i].children {
			if nodes[c].s.host != nodes[i].s.host && skewDelta(nodes[c].s.span, nodes[i].s.span) != 0 {
				return true
			}
			if walk(c) {
				return true
			}
		}
		return false
	}
	for _, r := range roots {
		if walk(r) {
			return true
		}
	}
	return false
}

// adjustClockSkew shifts spans as described above and returns the warnings it leaves.
func adjustClockSkew(spans []flatSpan, maxSkew time.Duration) map[pcommon.SpanID][]string {
	nodes, roots := buildSkewTree(spans)
	var warnings map[pcommon.SpanID][]string
	warn := func(sp ptrace.Span, msg string) {
		if warnings == nil {
			warnings = make(map[pcommon.SpanID][]string)
		}
		warnings[sp.SpanID()] = append(warnings[sp.SpanID()], msg)
	}
	visited := make([]bool, len(nodes))
	var walk func(i int, parent int, delta time.Duration)
	walk = func(i, parent int, delta time.Duration) {
		if visited[i] {
			return
		}
		visited[i] = true
		n := nodes[i]
		if parent >= 0 && n.s.host != nodes[parent].s.host {
			// The parent has been adjusted already, so comparing with it is fair.
			delta = skewDelta(n.s.span, nodes[parent].s.span)
			if delta != 0 && (delta > maxSkew || delta < -maxSkew) {
				warn(n.s.span, fmt.Sprintf("max clock skew adjustment delta of %v exceeded; not applying calculated delta of %v", maxSkew, delta))
				delta = 0
			}
		}
		if delta != 0 {
			shiftSpan(n.s.span, delta)
			warn(n.s.span, fmt.Sprintf("This span's timestamps were adjusted by %v", delta))
		}
		for _, c := range n.children {
			walk(c, i, delta)
		}
	}
	for _, r := range roots {
		walk(r, -1, 0)
	}
	return warnings
}

func shiftSpan(sp ptrace.Span, d time.Duration) {
	shift := func(ts pcommon.Timestamp) pcommon.Timestamp {
		v := int64(ts) + int64(d)
		if v < 0 {
			return 0
		}
		return pcommon.Timestamp(v)
	}
	sp.SetStartTimestamp(shift(sp.StartTimestamp()))
	sp.SetEndTimestamp(shift(sp.EndTimestamp()))
	evs := sp.Events()
	for i := 0; i < evs.Len(); i++ {
		evs.At(i).SetTimestamp(shift(evs.At(i).Timestamp()))
	}
}
