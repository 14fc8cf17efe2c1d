package query

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Fixture IDs. richTraceID has a non-zero high half, so it prints as 32 hex digits;
// linkedTraceID64 is a 64-bit (Zipkin-style) ID, printed as 16.
var (
	richTraceID      = pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	linkedTraceID64  = pcommon.TraceID{8: 0x00, 9: 0x00, 10: 0xab, 11: 0xcd, 12: 0x01, 13: 0x23, 14: 0x45, 15: 0x67}
	rootSpanID       = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	paySpanID        = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x75}
	fraudSpanID      = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x76}
	retrySpanID      = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x77}
	orphanSpanID     = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x78}
	linkedSpanID     = pcommon.SpanID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	richTraceStart   = time.Date(2026, 3, 14, 9, 26, 53, 589_793_000, time.UTC)
	richTraceStartUs = uint64(richTraceStart.UnixMicro())
)

func ts(offset time.Duration) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(richTraceStart.Add(offset))
}

// richTrace builds one trace that exercises every mapping rule: every attribute type,
// events (one clashing with the "event" field), links of every flavour, error and OK
// status, four resources of which two are identical (one process) and one has no
// attributes, a scope with attributes and one without a name, and spans stored out of
// start-time order.
func richTrace() ptrace.Traces {
	td := ptrace.NewTraces()

	// Resource 0: the gateway.
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api-gateway")
	rs.Resource().Attributes().PutStr("host.name", "gw-1")
	rs.Resource().Attributes().PutInt("process.pid", 4242)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("io.spoor.http")
	ss.Scope().SetVersion("1.2.3")
	ss.Scope().Attributes().PutStr("library.language", "go")

	// Stored first but starts 40ms in: sorting must move it after the root.
	retry := ss.Spans().AppendEmpty()
	retry.SetTraceID(richTraceID)
	retry.SetSpanID(retrySpanID)
	retry.SetParentSpanID(rootSpanID)
	retry.SetName("retry payment")
	retry.SetKind(ptrace.SpanKindInternal)
	retry.SetStartTimestamp(ts(40 * time.Millisecond))
	retry.SetEndTimestamp(ts(41 * time.Millisecond))
	// The parent is also a link, tagged child_of: one CHILD_OF reference, not two.
	pl := retry.Links().AppendEmpty()
	pl.SetTraceID(richTraceID)
	pl.SetSpanID(rootSpanID)
	pl.Attributes().PutStr("opentracing.ref_type", "child_of")

	root := ss.Spans().AppendEmpty()
	root.SetTraceID(richTraceID)
	root.SetSpanID(rootSpanID)
	root.SetName("POST /checkout")
	root.SetKind(ptrace.SpanKindServer)
	root.SetFlags(0x301) // sampled, parent-is-remote bits set
	root.SetStartTimestamp(ts(0))
	root.SetEndTimestamp(ts(150*time.Millisecond + 999)) // 999ns past a µs: truncated
	root.Status().SetCode(ptrace.StatusCodeOk)
	root.TraceState().FromRaw("ot=th:8;rv:c3a1b2,spoor=x")
	a := root.Attributes()
	a.PutStr("http.method", "POST")
	a.PutBool("http.retried", true)
	a.PutInt("http.status_code", 200)
	a.PutInt("big.int", math.MaxInt64)
	a.PutDouble("cart.total", 123.45)
	a.PutDouble("ratio.tiny", 1e-7)
	a.PutDouble("ratio.nan", math.NaN())
	a.PutEmptyBytes("payload").FromRaw([]byte{0x00, 0xff, 0x10, 'h', 'i'})
	m := a.PutEmptyMap("customer")
	m.PutStr("tier", "gold")
	m.PutInt("id", 7)
	sl := a.PutEmptySlice("items")
	sl.AppendEmpty().SetStr("sku-1")
	sl.AppendEmpty().SetInt(2)
	a.PutEmpty("nothing")
	a.PutStr("html", "<b>&amp;</b> \"quoted\" \\ \u2028 \t\x01")
	a.PutStr("bad.utf8", "a\xffb")
	ev := root.Events().AppendEmpty()
	ev.SetName("request.received")
	ev.SetTimestamp(ts(1 * time.Millisecond))
	ev.Attributes().PutInt("bytes", 512)

	// Resource 1: payments, error span with links.
	rs = td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "payments")
	rs.Resource().Attributes().PutStr("deployment.environment", "prod")
	ss = rs.ScopeSpans().AppendEmpty() // scope with no name or version
	pay := ss.Spans().AppendEmpty()
	pay.SetTraceID(richTraceID)
	pay.SetSpanID(paySpanID)
	pay.SetParentSpanID(rootSpanID)
	pay.SetName("charge card")
	pay.SetKind(ptrace.SpanKindClient)
	pay.SetFlags(1)
	pay.SetStartTimestamp(ts(10 * time.Millisecond))
	pay.SetEndTimestamp(ts(35 * time.Millisecond))
	pay.Status().SetCode(ptrace.StatusCodeError)
	pay.Status().SetMessage("card declined")
	pay.Attributes().PutStr("payment.provider", "acme")
	ev = pay.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(ts(34 * time.Millisecond))
	ev.Attributes().PutStr("exception.type", "CardDeclined")
	ev.Attributes().PutStr("exception.message", "insufficient funds")
	ev = pay.Events().AppendEmpty()
	ev.SetName("ignored because an attribute is named event")
	ev.SetTimestamp(ts(34*time.Millisecond + 500*time.Microsecond))
	ev.Attributes().PutStr("event", "retry scheduled")
	ev = pay.Events().AppendEmpty() // no name, no attributes
	ev.SetTimestamp(ts(35 * time.Millisecond))
	l := pay.Links().AppendEmpty()
	l.SetTraceID(linkedTraceID64)
	l.SetSpanID(linkedSpanID)
	l.Attributes().PutStr("link.reason", "batch")
	l = pay.Links().AppendEmpty() // empty IDs: dropped unless raw
	l.Attributes().PutStr("link.reason", "broken")

	// Resource 2: identical to resource 0, so its spans share process p1.
	rs = td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api-gateway")
	rs.Resource().Attributes().PutStr("host.name", "gw-1")
	rs.Resource().Attributes().PutInt("process.pid", 4242)
	ss = rs.ScopeSpans().AppendEmpty()
	fraud := ss.Spans().AppendEmpty()
	fraud.SetTraceID(richTraceID)
	fraud.SetSpanID(fraudSpanID)
	fraud.SetParentSpanID(rootSpanID)
	fraud.SetName("fraud check")
	fraud.SetKind(ptrace.SpanKindProducer)
	fraud.SetStartTimestamp(ts(5 * time.Millisecond))
	fraud.SetEndTimestamp(ts(4 * time.Millisecond)) // ends before it starts

	// Resource 3: no attributes at all.
	rs = td.ResourceSpans().AppendEmpty()
	ss = rs.ScopeSpans().AppendEmpty()
	orphan := ss.Spans().AppendEmpty()
	orphan.SetTraceID(richTraceID)
	orphan.SetSpanID(orphanSpanID)
	orphan.SetParentSpanID(pcommon.SpanID{0xde, 0xad})
	orphan.SetName("consume ledger entry")
	orphan.SetKind(ptrace.SpanKindConsumer)
	orphan.SetStartTimestamp(ts(200 * time.Millisecond))
	orphan.SetEndTimestamp(ts(210 * time.Millisecond))

	return td
}

// simpleTrace is a small valid trace for store-backed tests: one root span of service at
// start, with one child, both carrying the attribute env=env.
func simpleTrace(id pcommon.TraceID, service, op string, start time.Time, dur time.Duration, env string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	root := ss.Spans().AppendEmpty()
	root.SetTraceID(id)
	root.SetSpanID(pcommon.SpanID{1, id[15]})
	root.SetName(op)
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(dur)))
	root.Attributes().PutStr("env", env)
	root.Attributes().PutInt("http.status_code", 200)
	child := ss.Spans().AppendEmpty()
	child.SetTraceID(id)
	child.SetSpanID(pcommon.SpanID{2, id[15]})
	child.SetParentSpanID(root.SpanID())
	child.SetName(op + " db")
	child.SetKind(ptrace.SpanKindClient)
	child.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(dur / 4)))
	child.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(dur / 2)))
	return td
}

// fixtureRetention keeps the fixtures' fixed 2026 timestamps inside the store's
// retention: retention drops buckets by span time, at Open and every few minutes, so a
// store with the default 72 h would drop them at a moment that depends on timing.
const fixtureRetention = 20 * 365 * 24 * time.Hour
