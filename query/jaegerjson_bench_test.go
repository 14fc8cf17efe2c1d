package query

import (
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// benchTrace is a 200-span trace across 5 services, 6 attributes per span.
func benchTrace() ptrace.Traces {
	td := ptrace.NewTraces()
	id := pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for s := 0; s < 5; s++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc-"+itoa(s))
		rs.Resource().Attributes().PutStr("host.name", "host-"+itoa(s))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("bench")
		for i := 0; i < 40; i++ {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(id)
			sp.SetSpanID(pcommon.SpanID{byte(s), byte(i), 1})
			sp.SetParentSpanID(pcommon.SpanID{byte(s), 0, 1})
			sp.SetName("operation " + itoa(i%7))
			sp.SetKind(ptrace.SpanKindServer)
			start := richTraceStart.Add(time.Duration(40*s+i) * time.Millisecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
			a := sp.Attributes()
			a.PutStr("http.method", "GET")
			a.PutStr("http.url", "https://example.com/api/v1/items?id="+itoa(i))
			a.PutInt("http.status_code", 200)
			a.PutBool("cache.hit", i%2 == 0)
			a.PutDouble("load", 0.75)
			a.PutStr("peer.service", "svc-"+itoa((s+1)%5))
			ev := sp.Events().AppendEmpty()
			ev.SetName("done")
			ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond / 2)))
		}
	}
	return td
}

func BenchmarkJaegerTraceConversion(b *testing.B) {
	td := benchTrace()
	var cv jaegerConverter
	out := cv.appendTrace(nil, td, false)
	if !json.Valid(out) {
		b.Fatal("invalid JSON")
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out = cv.appendTrace(out[:0], td, false)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/200, "ns/span")
}

// BenchmarkAdjustUnchanged is the adjusters' cost on a trace that needs no adjusting, the
// common case they add to every trace Jaeger clients read.
func BenchmarkAdjustUnchanged(b *testing.B) {
	td := benchTrace()
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := adjustTrace(td, DefaultMaxClockSkewAdjust); out != td {
			b.Fatal("adjusted")
		}
	}
}
