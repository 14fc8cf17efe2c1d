package query

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var skewTraceID = pcommon.TraceID{0x5c, 0xe3, 15: 0x01}

// skewTrace: a gateway on host-a calls orders on host-b, whose clock is 50 ms behind, so
// orders' server span starts before the call; its child db span (same host) is behind by
// as much. A third host-c span lasts longer than its parent (cannot be placed), a fourth
// on host-d is 10 s off (more than the 1 s maximum: warned about, not moved).
func skewTrace() ptrace.Traces {
	td := ptrace.NewTraces()
	add := func(host, svc string, id, parent byte, name string, kind ptrace.SpanKind, start, dur time.Duration) ptrace.Span {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("host.name", host)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(skewTraceID)
		sp.SetSpanID(pcommon.SpanID{7: id})
		if parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{7: parent})
		}
		sp.SetName(name)
		sp.SetKind(kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(zipkinBase.Add(start)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(zipkinBase.Add(start + dur)))
		return sp
	}
	add("host-a", "gateway", 1, 0, "GET /order", ptrace.SpanKindServer, 0, 100*time.Millisecond)
	add("host-a", "gateway", 2, 1, "call orders", ptrace.SpanKindClient, 10*time.Millisecond, 80*time.Millisecond)
	srv := add("host-b", "orders", 3, 2, "GET /orders", ptrace.SpanKindServer, -30*time.Millisecond, 60*time.Millisecond)
	ev := srv.Events().AppendEmpty()
	ev.SetName("parsed")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(zipkinBase.Add(-20 * time.Millisecond)))
	add("host-b", "orders", 4, 3, "SELECT", ptrace.SpanKindClient, -25*time.Millisecond, 10*time.Millisecond)
	add("host-c", "audit", 5, 1, "audit", ptrace.SpanKindServer, 90*time.Millisecond, 200*time.Millisecond)
	add("host-d", "mailer", 6, 1, "send", ptrace.SpanKindServer, -10*time.Second, 5*time.Millisecond)
	return td
}

func TestClockSkewAdjuster(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.write(skewTrace())
	env := e.expectOK("/api/traces/" + traceIDString(skewTraceID))
	var traces []uiTrace
	if err := json.Unmarshal(env.Data, &traces); err != nil || len(traces) != 1 {
		t.Fatalf("%v %s", err, env.Data)
	}
	checkGolden(t, "jaeger_trace_skew.json", indentJSON(t, firstRawTrace(t, env.Data)))
	spans := map[string]uiSpan{}
	for _, s := range traces[0].Spans {
		spans[s.OperationName] = s
	}
	base := uint64(zipkinBase.UnixMicro())
	// The call runs 10..90 ms; the 60 ms server span is centred in it: 20..80 ms.
	if got := spans["GET /orders"].StartTime; got != base+20_000 {
		t.Errorf("server span starts at +%d µs, want +20000", int64(got-base))
	}
	if w := spans["GET /orders"].Warnings; len(w) != 1 || w[0] != "This span's timestamps were adjusted by 50ms" {
		t.Errorf("server span warnings %q", w)
	}
	if logs := spans["GET /orders"].Logs; len(logs) != 1 || logs[0].Timestamp != base+30_000 {
		t.Errorf("event not moved with its span: %+v", logs)
	}
	// Same host as its parent: moved by the same delta.
	if got := spans["SELECT"].StartTime; got != base+25_000 {
		t.Errorf("child on the same host starts at +%d µs, want +25000", int64(got-base))
	}
	// Longer than its parent: left alone, no warning.
	if got := spans["audit"].StartTime; got != base+90_000 || spans["audit"].Warnings != nil {
		t.Errorf("audit span moved or warned: %+v", spans["audit"])
	}
	if w := spans["send"].Warnings; len(w) != 1 || !strings.HasPrefix(w[0], "max clock skew adjustment delta of 1s exceeded") {
		t.Errorf("10s skew: warnings %q", w)
	}
	if got := spans["send"].StartTime; got != uint64(zipkinBase.Add(-10*time.Second).UnixMicro()) {
		t.Errorf("10s skew applied")
	}
	// raw=true: as stored.
	env = e.expectOK("/api/traces/" + traceIDString(skewTraceID) + "?raw=true")
	if err := json.Unmarshal(env.Data, &traces); err != nil {
		t.Fatal(err)
	}
	for _, s := range traces[0].Spans {
		if s.OperationName == "GET /orders" && (s.StartTime != base-30_000 || s.Warnings != nil) {
			t.Errorf("raw trace adjusted: %+v", s)
		}
	}
	// Turned off: nothing moves.
	off := newTestEnv(t, Options{MaxClockSkewAdjust: -1})
	off.write(skewTrace())
	env = off.expectOK("/api/traces/" + traceIDString(skewTraceID))
	if err := json.Unmarshal(env.Data, &traces); err != nil {
		t.Fatal(err)
	}
	for _, s := range traces[0].Spans {
		if s.Warnings != nil || (s.OperationName == "GET /orders" && s.StartTime != base-30_000) {
			t.Errorf("adjuster off, span adjusted: %+v", s)
		}
	}
	// The stored trace is untouched.
	stored, err := e.store.GetTrace(t.Context(), skewTraceID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range flattenSpans(stored, nil) {
		if s.span.Name() == "GET /orders" && s.span.StartTimestamp().AsTime() != zipkinBase.Add(-30*time.Millisecond) {
			t.Errorf("stored span changed")
		}
	}
}

// Zipkin's shared spans: the server half gets its own ID under the client half.
func TestSpanIDUniquifier(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.write(zipkinFixtures(t))
	env := e.expectOK("/api/traces/" + sharedTraceID)
	var traces []uiTrace
	if err := json.Unmarshal(env.Data, &traces); err != nil || len(traces) != 1 {
		t.Fatalf("%v %s", err, env.Data)
	}
	checkGolden(t, "jaeger_trace_shared.json", indentJSON(t, firstRawTrace(t, env.Data)))
	ids := map[string]uiSpan{}
	for _, s := range traces[0].Spans {
		if _, dup := ids[s.SpanID]; dup {
			t.Errorf("span ID %s twice after adjusting", s.SpanID)
		}
		ids[s.SpanID] = s
	}
	var server uiSpan
	for _, s := range traces[0].Spans {
		if s.OperationName == "get /api" {
			server = s
		}
	}
	// The largest ID in the trace is 0b; the new one is the next free one.
	if server.SpanID != "000000000000000c" || len(server.References) != 1 || server.References[0].SpanID != "000000000000000b" {
		t.Errorf("server half: %+v", server)
	}
	env = e.expectOK("/api/traces/" + sharedTraceID + "?raw=true")
	if err := json.Unmarshal(env.Data, &traces); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range traces[0].Spans {
		if s.SpanID == "000000000000000b" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("raw=true: %d spans with the shared ID, want 2", n)
	}
}

func TestUniquifierMovesChildren(t *testing.T) {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	mk := func(id, parent byte, kind ptrace.SpanKind) {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(skewTraceID)
		sp.SetSpanID(pcommon.SpanID{7: id})
		if parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{7: parent})
		}
		sp.SetKind(kind)
	}
	mk(1, 0, ptrace.SpanKindServer)
	mk(2, 1, ptrace.SpanKindClient)
	mk(2, 1, ptrace.SpanKindServer) // shared with the client
	mk(3, 2, ptrace.SpanKindClient) // a child of the shared ID: belongs to the server half
	mk(0xff, 1, ptrace.SpanKindInternal)
	out, _ := adjustTrace(td, -1)
	got := map[pcommon.SpanID]pcommon.SpanID{}
	var kinds []ptrace.SpanKind
	for _, s := range flattenSpans(out, nil) {
		got[s.span.SpanID()] = s.span.ParentSpanID()
		kinds = append(kinds, s.span.Kind())
	}
	newID := pcommon.SpanID{6: 1} // 0x100, after the largest ID 0xff
	if len(got) != 5 || got[newID] != (pcommon.SpanID{7: 2}) || got[pcommon.SpanID{7: 3}] != newID {
		t.Errorf("after uniquifying: %v", got)
	}
	if spans := flattenSpans(td, nil); spans[2].span.SpanID() != (pcommon.SpanID{7: 2}) {
		t.Errorf("input modified")
	}
}

// firstRawTrace is the first trace of an envelope's data, as sent.
func firstRawTrace(t *testing.T, data []byte) []byte {
	t.Helper()
	var traces []json.RawMessage
	if err := json.Unmarshal(data, &traces); err != nil || len(traces) == 0 {
		t.Fatalf("no trace in %s: %v", data, err)
	}
	return traces[0]
}

// Arbitrary parent links (cycles, self-parents, duplicate IDs, kinds, hosts, times): the
// adjusters never panic, never touch their input, keep every span, and what they return
// converts to valid JSON.
func FuzzAdjusters(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 0, 100, 2, 1, 2, 1, 10, 20, 2, 1, 1, 0, 5, 200})
	f.Add([]byte{1, 2, 0, 0, 0, 1, 2, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		td := ptrace.NewTraces()
		for i := 0; i+6 <= len(b) && i < 6*64; i += 6 {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("host.name", string('a'+rune(b[i+3]%3)))
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetTraceID(skewTraceID)
			sp.SetSpanID(pcommon.SpanID{7: b[i] % 8})
			sp.SetParentSpanID(pcommon.SpanID{7: b[i+1] % 8})
			sp.SetKind(ptrace.SpanKind(b[i+2] % 6))
			start := pcommon.Timestamp(uint64(b[i+4]) * 1e6)
			sp.SetStartTimestamp(start)
			sp.SetEndTimestamp(start + pcommon.Timestamp(uint64(b[i+5])*1e6))
		}
		var m ptrace.JSONMarshaler
		before, err := m.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := adjustTrace(td, time.Second)
		if after, err := m.MarshalTraces(td); err != nil || !bytes.Equal(after, before) {
			t.Fatalf("input modified (%v)", err)
		}
		if out.SpanCount() != td.SpanCount() {
			t.Fatalf("%d spans in, %d out", td.SpanCount(), out.SpanCount())
		}
		var cv jaegerConverter
		if !json.Valid(cv.appendTrace(nil, out, false)) {
			t.Fatal("invalid JSON")
		}
	})
}
