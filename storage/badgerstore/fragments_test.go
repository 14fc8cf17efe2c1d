package badgerstore

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestTracesSharingLowHalf: a 64-bit trace and 128-bit traces with the same low 64 bits
// share a trace field. Each is read alone by its full ID; FindTraceIDsByLow64 finds them
// all, from the head and from segments; a deleted one drops out of both.
func TestTracesSharingLowHalf(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const low = 0x1122334455667788
	mk := func(high uint64) pcommon.TraceID {
		var id pcommon.TraceID
		binary.BigEndian.PutUint64(id[:8], high)
		binary.BigEndian.PutUint64(id[8:], low)
		return id
	}
	ids := []pcommon.TraceID{mk(0), mk(0xAAAA), mk(0xBBBB)}
	write := func(id pcommon.TraceID, spans int, svc string) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		for k := range spans {
			sp := ss.AppendEmpty()
			sp.SetTraceID(id)
			sp.SetSpanID(pcommon.SpanID{id[0] | 1, id[1], byte(k + 1)})
			sp.SetName("op")
			now := time.Now().Add(-time.Minute)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		}
		if err := s.WriteTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	write(ids[0], 1, "a")
	write(ids[1], 2, "b")
	if err := s.flushHead(); err != nil { // ids[0] and ids[1] in a segment, ids[2] in the head
		t.Fatal(err)
	}
	write(ids[2], 3, "c")
	check := func(want []pcommon.TraceID) {
		t.Helper()
		got, err := s.FindTraceIDsByLow64(ctx, low)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("FindTraceIDsByLow64 = %v, %v; want %v", got, err, want)
		}
		for i, id := range want {
			td, err := s.GetTrace(ctx, id)
			spans := slices.Index(ids, id) + 1
			if err != nil || td.SpanCount() != spans {
				t.Fatalf("GetTrace(%d: %s) = %d spans, %v; want %d", i, id, td.SpanCount(), err, spans)
			}
			sum, err := s.GetTraceSummary(ctx, id)
			if err != nil || sum.SpanCount != spans || len(sum.Services) != 1 {
				t.Fatalf("GetTraceSummary(%s) = %+v, %v; want %d spans of one service", id, sum, err, spans)
			}
		}
	}
	check(ids)
	if err := s.DeleteTrace(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	check([]pcommon.TraceID{ids[0], ids[2]})
	if got, err := s.FindTraceIDsByLow64(ctx, low+1); err != nil || len(got) != 0 || got == nil {
		t.Fatalf("FindTraceIDsByLow64(another low half) = %#v, %v; want empty, not nil", got, err)
	}
}
