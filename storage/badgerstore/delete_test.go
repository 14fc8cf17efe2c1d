package badgerstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// TestDeleteTrace deletes one of two traces sharing a batch: the deleted one is gone
// from GetTrace, summaries and searches (also after a restart), the other is whole.
func TestDeleteTrace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	ids := []pcommon.TraceID{{1, 1}, {2, 2}}
	for i, id := range ids {
		for k := range 3 {
			sp := spans.AppendEmpty()
			sp.SetTraceID(id)
			sp.SetSpanID(pcommon.SpanID{byte(i + 1), byte(k + 1)})
			sp.SetName("op")
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		}
	}
	if err := s.WriteTraces(ctx, td); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		if _, err := s.GetTrace(ctx, ids[0]); !errors.Is(err, storage.ErrTraceNotFound) {
			t.Fatalf("%s: GetTrace of the deleted trace: %v, want not found", when, err)
		}
		if _, err := s.GetTraceSummary(ctx, ids[0]); !errors.Is(err, storage.ErrTraceNotFound) {
			t.Fatalf("%s: GetTraceSummary of the deleted trace: %v, want not found", when, err)
		}
		kept, err := s.GetTrace(ctx, ids[1])
		if err != nil || kept.SpanCount() != 3 {
			t.Fatalf("%s: the other trace: %d spans, %v", when, kept.SpanCount(), err)
		}
		found, err := s.FindTraceIDs(ctx, storage.TraceQuery{ServiceName: "svc", Limit: 10})
		if err != nil || len(found) != 1 || found[0] != ids[1] {
			t.Fatalf("%s: search finds %v, %v; want only %v", when, found, err, ids[1])
		}
	}
	if err := s.DeleteTrace(ctx, ids[0]); err != nil {
		t.Fatalf("DeleteTrace: %v", err)
	}
	check(s, "after delete")
	if err := s.DeleteTrace(ctx, ids[0]); !errors.Is(err, storage.ErrTraceNotFound) {
		t.Fatalf("second DeleteTrace: %v, want not found", err)
	}
	if got := s.Stats().TracesDeleted; got != 1 {
		t.Fatalf("TracesDeleted = %d, want 1", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "after restart")

	// Spans sent for the deleted trace afterwards bring it back with those spans only.
	late := ptrace.NewTraces()
	lrs := late.ResourceSpans().AppendEmpty()
	lrs.Resource().Attributes().PutStr("service.name", "late-svc")
	sp := lrs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(ids[0])
	sp.SetSpanID(pcommon.SpanID{9, 9})
	sp.SetName("late-op")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(2 * time.Second)))
	if err := s.WriteTraces(ctx, late); err != nil {
		t.Fatal(err)
	}
	back, err := s.GetTrace(ctx, ids[0])
	if err != nil || back.SpanCount() != 1 {
		t.Fatalf("GetTrace after late spans: %d spans, %v; want the 1 late span", back.SpanCount(), err)
	}
	sum, err := s.GetTraceSummary(ctx, ids[0])
	if err != nil || sum.SpanCount != 1 || len(sum.Services) != 1 || sum.Services[0].Name != "late-svc" {
		t.Fatalf("GetTraceSummary after late spans: %+v, %v; want 1 span of late-svc", sum, err)
	}
}

// TestReadValueRereadsOnce: a value that does not decode is read again in a fresh
// transaction once (counted); one that never decodes is an error naming both attempts.
func TestReadValueRereadsOnce(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A key of the current hour: retention's pass at Open drops old buckets.
	key := appendBlockKey(nil, prefixTable, blockRef{bucket: bucketOf(uint64(time.Now().UnixNano())), hash: 1})
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte("value")) }); err != nil {
		t.Fatal(err)
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	calls := 0
	found, err := s.readValue(txn, key, func(v []byte) error {
		calls++
		if calls == 1 {
			return errors.New("torn read")
		}
		if string(v) != "value" {
			t.Errorf("second read saw %q", v)
		}
		return nil
	})
	if err != nil || !found || calls != 2 || s.Stats().ValueRereads != 1 {
		t.Fatalf("reread: found %v, err %v, %d decodes, %d rereads", found, err, calls, s.Stats().ValueRereads)
	}
	_, err = s.readValue(txn, key, func([]byte) error { return errors.New("bad value") })
	if err == nil || !strings.Contains(err.Error(), "bad value") {
		t.Fatalf("a value that never decodes: err %v", err)
	}
	if found, err := s.readValue(txn, []byte{prefixTable, 9}, func([]byte) error { return nil }); found || err != nil {
		t.Fatalf("missing key: found %v, err %v", found, err)
	}
}
