package storagetest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// traceID makes a readable trace ID from a number.
func traceID(n uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[8:], n)
	id[0] = 0x5a // not a 64-bit Zipkin-style ID, not all-zero
	return id
}

func spanID(n uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], n)
	return id
}

// spanSpec describes one span for the builders.
type spanSpec struct {
	trace    pcommon.TraceID
	id       uint64
	parent   uint64
	service  string
	name     string
	kind     ptrace.SpanKind
	start    time.Time
	duration time.Duration
	attrs    map[string]string
	isError  bool
	isOK     bool   // status Ok (neither: Unset)
	peer     string // peer.service
}

// batch builds one ptrace.Traces, one resource per span (as some SDK exporters do) so
// that several services can share a batch.
func batch(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range specs {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(s.trace)
		sp.SetSpanID(spanID(s.id))
		if s.parent != 0 {
			sp.SetParentSpanID(spanID(s.parent))
		}
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(s.duration)))
		keys := make([]string, 0, len(s.attrs))
		for k := range s.attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sp.Attributes().PutStr(k, s.attrs[k])
		}
		if s.isError {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		if s.isOK {
			sp.Status().SetCode(ptrace.StatusCodeOk)
		}
		if s.peer != "" {
			sp.Attributes().PutStr("peer.service", s.peer)
		}
	}
	return td
}

// spanKeys lists a trace's spans as comparable strings, sorted, so that two reads can be
// compared as multisets.
func spanKeys(td ptrace.Traces) []string {
	var out []string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				id, parent := sp.SpanID(), sp.ParentSpanID()
				out = append(out, fmt.Sprintf("%s/%s/%s/%s/%s/%d", svc.AsString(), hex.EncodeToString(id[:]),
					hex.EncodeToString(parent[:]), sp.Name(), sp.Kind(), sp.StartTimestamp()))
			}
		}
	}
	slices.Sort(out)
	return out
}

func idStrings(ids []pcommon.TraceID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = hex.EncodeToString(id[:])
	}
	return out
}
