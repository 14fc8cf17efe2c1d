package benchdata

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TelemetrygenShaped builds a request like telemetrygen's, which the end-to-end
// benchmarks replay: one resource, one scope, traces of one root and perTrace-1
// children, 12 string attributes on every span. Refresh gives it IDs and times.
func TelemetrygenShaped(n, perTrace int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bench")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	spans := ss.Spans()
	spans.EnsureCapacity(n)
	for i := 0; i < n; i++ {
		sp := spans.AppendEmpty()
		if i%perTrace == 0 {
			sp.SetName("lets-go")
			sp.SetKind(ptrace.SpanKindClient)
		} else {
			sp.SetName("okey-dokey-" + strconv.Itoa(i%perTrace-1))
			sp.SetKind(ptrace.SpanKindServer)
		}
		attrs := sp.Attributes()
		attrs.PutStr("network.peer.address", "1.2.3.4")
		attrs.PutStr("peer.service", "telemetrygen-server")
		for a := 0; a < 10; a++ {
			attrs.PutStr("attr"+strconv.Itoa(a), "value-"+strconv.Itoa(a))
		}
	}
	return td
}

// Refresh gives every trace of spans (perTrace spans each, root first) IDs from rng and
// timestamps from now.
func Refresh(spans ptrace.SpanSlice, perTrace int, rng *rand.Rand, now time.Time) {
	var tid pcommon.TraceID
	var root pcommon.SpanID
	for i := 0; i < spans.Len(); i++ {
		sp := spans.At(i)
		var sid pcommon.SpanID
		binary.LittleEndian.PutUint64(sid[:], rng.Uint64()|1)
		if i%perTrace == 0 {
			binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
			binary.LittleEndian.PutUint64(tid[8:], rng.Uint64()|1)
			root = sid
			sp.SetParentSpanID(pcommon.SpanID{})
		} else {
			sp.SetParentSpanID(root)
		}
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		start := now.Add(time.Duration(i%perTrace) * 10 * time.Microsecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(123 * time.Microsecond)))
	}
}
