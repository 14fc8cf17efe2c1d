package badgerstore

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// statusBatch is one trace per start, each a span of service with the given status.
func statusBatch(service string, code ptrace.StatusCode, first byte, starts ...time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i, at := range starts {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{15: first + byte(i)})
		sp.SetSpanID(pcommon.SpanID{7: first + byte(i)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
		sp.Status().SetCode(code)
	}
	return td
}

func findIDs(t *testing.T, s *Store, q storage.TraceQuery) []byte {
	t.Helper()
	ids, err := s.FindTraceIDs(context.Background(), q)
	if err != nil {
		t.Fatalf("FindTraceIDs(%+v): %v", q, err)
	}
	var out []byte
	for _, id := range ids {
		out = append(out, id[15])
	}
	return out
}

// TestStatusOKInStoreWithoutTheField: a version 5 store written before status OK fields
// existed (no meta key 00 04) is searched for status OK through its spans in the buckets
// it had written, and through the field above them; blocks written after the upgrade
// into those old buckets are found too.
func TestStatusOKInStoreWithoutTheField(t *testing.T) {
	hour := time.Now().Add(-5 * time.Hour).Truncate(time.Hour)
	s := reopenWithoutMeta(t, metaStatusFrom, func(old *Store) {
		statusOKType = 0x7F // the writer of the old store had no such field
		defer func() { statusOKType = fieldStatus }()
		for _, td := range []ptrace.Traces{
			statusBatch("svc", ptrace.StatusCodeOk, 1, hour.Add(time.Minute), hour.Add(2*time.Minute)),
			statusBatch("svc", ptrace.StatusCodeUnset, 10, hour.Add(3*time.Minute)),
			statusBatch("svc", ptrace.StatusCodeOk, 20, hour.Add(time.Hour+time.Minute)),
		} {
			if err := old.WriteTraces(context.Background(), td); err != nil {
				t.Fatalf("WriteTraces: %v", err)
			}
		}
	})
	if want := bucketOf(unixNs(hour.Add(time.Hour))) + 1; s.statusFrom != want {
		t.Fatalf("statusFrom = %d, want %d (the bucket after the last written)", s.statusFrom, want)
	}
	for _, td := range []ptrace.Traces{
		statusBatch("svc", ptrace.StatusCodeOk, 30, hour.Add(4*time.Minute)),              // late, into an old bucket
		statusBatch("svc", ptrace.StatusCodeOk, 40, hour.Add(3*time.Hour)),                // a new bucket
		statusBatch("svc", ptrace.StatusCodeUnset, 50, hour.Add(3*time.Hour+time.Second)), // not ok
	} {
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatalf("WriteTraces: %v", err)
		}
	}
	wantAll := []byte{40, 20, 30, 2, 1}
	for _, q := range []storage.TraceQuery{{Status: storage.StatusOK}, {ServiceName: "svc", Status: storage.StatusOK}} {
		if got := findIDs(t, s, q); !slices.Equal(got, wantAll) {
			t.Fatalf("%+v: %v, want %v", q, got, wantAll)
		}
	}
	q := storage.TraceQuery{Status: storage.StatusOK, StartTimeMin: hour.Add(90 * time.Second), StartTimeMax: hour.Add(2 * time.Hour)}
	if got, want := findIDs(t, s, q), []byte{20, 30, 2}; !slices.Equal(got, want) {
		t.Fatalf("windowed: %v, want %v", got, want)
	}
	est, err := s.EstimateTraces(context.Background(), storage.TraceQuery{Status: storage.StatusOK})
	if err != nil || est.Count < int64(len(wantAll)) || (est.Exact && est.Count != int64(len(wantAll))) {
		t.Fatalf("EstimateTraces = %+v, %v; %d match", est, err, len(wantAll))
	}
	// Without the old buckets' fallback the old ok spans are not found: the case above
	// tests it.
	s.statusFrom = 0
	if got := findIDs(t, s, storage.TraceQuery{Status: storage.StatusOK}); slices.Equal(got, wantAll) {
		t.Fatalf("without the fallback the old blocks' ok spans were found all the same: %v", got)
	}
}

// TestStatusOKOfDeletedTrace: the status OK field of a block a tombstone hides does not
// make the trace match once it came back with other spans.
func TestStatusOKOfDeletedTrace(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	at := time.Now().Add(-time.Hour)
	ctx := context.Background()
	if err := s.WriteTraces(ctx, statusBatch("svc", ptrace.StatusCodeOk, 1, at, at.Add(time.Second))); err != nil {
		t.Fatalf("WriteTraces: %v", err)
	}
	if err := s.DeleteTrace(ctx, pcommon.TraceID{15: 1}); err != nil {
		t.Fatalf("DeleteTrace: %v", err)
	}
	if err := s.WriteTraces(ctx, statusBatch("svc", ptrace.StatusCodeUnset, 1, at.Add(2*time.Second))); err != nil {
		t.Fatalf("WriteTraces: %v", err)
	}
	for _, q := range []storage.TraceQuery{{Status: storage.StatusOK}, {ServiceName: "svc", Status: storage.StatusOK}} {
		if got := findIDs(t, s, q); !slices.Equal(got, []byte{2}) {
			t.Fatalf("%+v: %v, want [2]", q, got)
		}
	}
	if got := findIDs(t, s, storage.TraceQuery{Status: storage.StatusUnset}); !slices.Equal(got, []byte{1}) {
		t.Fatalf("unset: %v, want [1]", got)
	}
}

// TestReadPageAcrossBlocks: a page whose traces lie in many blocks, decompressed and cut
// on several goroutines, returns each trace's spans as GetTrace does; a block that does
// not decode (read again, and again refused) fails the search with an error.
func TestReadPageAcrossBlocks(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Now().Add(-time.Hour)
	for b := range 30 {
		td := statusBatch("svc", ptrace.StatusCodeUnset, byte(3*b+1), at.Add(time.Duration(3*b)*time.Second), at.Add(time.Duration(3*b+1)*time.Second), at.Add(time.Duration(3*b+2)*time.Second))
		other := statusBatch("other", ptrace.StatusCodeOk, byte(3*b+1), at.Add(time.Duration(3*b)*time.Second))
		other.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
		if err := s.WriteTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.SearchTraces(ctx, storage.TraceQuery{ServiceName: "svc", Limit: 100}, storage.WithSpans)
	if err != nil || len(res.Traces) != 90 {
		t.Fatalf("SearchTraces: %d traces, %v", len(res.Traces), err)
	}
	for i, td := range res.Traces {
		want, err := s.GetTrace(ctx, res.Summaries[i].TraceID)
		if err != nil {
			t.Fatal(err)
		}
		var pm ptrace.ProtoMarshaler
		a, _ := pm.MarshalTraces(td)
		b, _ := pm.MarshalTraces(want)
		if td.SpanCount() != want.SpanCount() || !slices.Equal(a, b) {
			t.Fatalf("trace %v: search read %d spans, GetTrace %d", res.Summaries[i].TraceID, td.SpanCount(), want.SpanCount())
		}
	}
	sum, err := s.GetTraceSummary(ctx, res.Summaries[5].TraceID)
	if err != nil {
		t.Fatal(err)
	}
	var internal summary
	txn, st := s.begin()
	found, err := s.traceSummary(txn, st, sum.TraceID, &internal, math.MaxUint64)
	txn.Discard()
	if err != nil || !found || len(internal.blocks) != 1 {
		t.Fatalf("summary: %v %v %+v", found, err, internal.blocks)
	}
	key := appendBlockKey(nil, prefixBlock, internal.blocks[0])
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte{codecZstdProto, 1, 2, 3}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SearchTraces(ctx, storage.TraceQuery{ServiceName: "svc", Limit: 100}, storage.WithSpans); err == nil || !strings.Contains(err.Error(), "read block") {
		t.Fatalf("a block that does not decode: err %v", err)
	}
}

// mixedStatusBatch is trace first+i per start: a span of api with status api and one of
// db with status db, the db span starting 10 ms after the api one.
func mixedStatusBatch(api, db ptrace.StatusCode, first byte, starts ...time.Time) ptrace.Traces {
	td := statusBatch("api", api, first, starts...)
	more := statusBatch("db", db, first, starts...)
	spans := more.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		sp := spans.At(i)
		sp.SetSpanID(pcommon.SpanID{0: 1, 7: first + byte(i)})
		sp.SetStartTimestamp(sp.StartTimestamp() + pcommon.Timestamp(10*time.Millisecond))
		sp.SetEndTimestamp(sp.EndTimestamp() + pcommon.Timestamp(10*time.Millisecond))
	}
	more.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	return td
}

// unsetCases are status Unset searches of the traces unsetStore writes from at, with
// their answers (trace ID low bytes, newest first, equal starts by ascending ID), and
// whether summaries alone answer them (no trace straddles the window's edge).
func unsetCases(at time.Time) []struct {
	q             storage.TraceQuery
	want          []byte
	fromSummaries bool
} {
	return []struct {
		q             storage.TraceQuery
		want          []byte
		fromSummaries bool
	}{
		{storage.TraceQuery{Status: storage.StatusUnset}, []byte{31, 10, 11, 20, 21, 30}, true},
		{storage.TraceQuery{ServiceName: "api", Status: storage.StatusUnset}, []byte{31, 10, 11, 30}, true},
		{storage.TraceQuery{ServiceName: "db", Status: storage.StatusUnset}, []byte{10, 11, 20, 21}, true},
		{storage.TraceQuery{Status: storage.StatusUnset, StartTimeMin: at.Add(-time.Minute), StartTimeMax: at.Add(2 * time.Minute)}, []byte{31, 10, 11, 20, 21, 30}, true},
		// The traces starting at at straddle at+5ms (only their db spans start after
		// it): their spans decide — but api's spans all start before it, which the
		// index's bounds tell without reading any.
		{storage.TraceQuery{ServiceName: "api", Status: storage.StatusUnset, StartTimeMin: at.Add(5 * time.Millisecond)}, []byte{31}, true},
		{storage.TraceQuery{Status: storage.StatusUnset, StartTimeMin: at.Add(5 * time.Millisecond)}, []byte{31, 10, 11, 20, 21}, false},
	}
}

// unsetStore writes traces whose services leave the status unset or set it OK or Error:
// every span OK (1, 2), api OK and db unset (20, 21), api unset and db OK (30, 31), both
// unset (10, 11), both failed (40), api failed and db OK (50); trace 31 starts a minute
// later than the others.
func unsetStore(t *testing.T, s *Store, at time.Time) {
	t.Helper()
	for _, td := range []ptrace.Traces{
		mixedStatusBatch(ptrace.StatusCodeOk, ptrace.StatusCodeOk, 1, at, at),
		mixedStatusBatch(ptrace.StatusCodeUnset, ptrace.StatusCodeUnset, 10, at, at),
		mixedStatusBatch(ptrace.StatusCodeOk, ptrace.StatusCodeUnset, 20, at, at),
		mixedStatusBatch(ptrace.StatusCodeUnset, ptrace.StatusCodeOk, 30, at),
		mixedStatusBatch(ptrace.StatusCodeUnset, ptrace.StatusCodeOk, 31, at.Add(time.Minute)),
		mixedStatusBatch(ptrace.StatusCodeError, ptrace.StatusCodeError, 40, at),
		mixedStatusBatch(ptrace.StatusCodeError, ptrace.StatusCodeOk, 50, at),
	} {
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatalf("WriteTraces: %v", err)
		}
	}
}

// TestStatusUnsetFromSummaries: a search for status Unset (with a service, a window, or
// neither) is answered from the summaries' counts, reading no span, unless a trace
// straddles the window's edge; its answers are those of reading every span (the same
// search naming the operation all spans have, which only spans can certify).
func TestStatusUnsetFromSummaries(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Minute)
	for _, flushed := range []bool{false, true} {
		s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		unsetStore(t, s, at)
		if flushed {
			if err := s.flushHead(); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range unsetCases(at) {
			s.cache = newBlockCache(s.cache.max) // empty: searches put what they decode there
			if got := findIDs(t, s, c.q); !slices.Equal(got, c.want) {
				t.Fatalf("flushed %v, %+v: %v, want %v", flushed, c.q, got, c.want)
			}
			if n := len(s.cache.byRef); c.fromSummaries != (n == 0) {
				t.Fatalf("flushed %v, %+v decoded %d blocks; want it answered from summaries: %v", flushed, c.q, n, c.fromSummaries)
			}
			bySpans := c.q
			bySpans.OperationName = "op"
			if got := findIDs(t, s, bySpans); !slices.Equal(got, c.want) {
				t.Fatalf("flushed %v, %+v through spans: %v, want %v", flushed, bySpans, got, c.want)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatusUnsetInStoreWithoutOKCounts: fragments of a store written before summaries
// counted OK spans (no meta key 00 05) say nothing about Unset spans, so those traces'
// spans decide; fragments written since, in any bucket, are counted.
func TestStatusUnsetInStoreWithoutOKCounts(t *testing.T) {
	at := time.Now().Add(-time.Hour).Truncate(time.Minute)
	s := reopenWithoutMeta(t, metaOKFrom, func(old *Store) {
		fragmentOKCounts = false // the writer of the old store had no OK counts
		defer func() { fragmentOKCounts = true }()
		unsetStore(t, old, at)
	})
	if want := bucketOf(unixNs(at.Add(time.Minute))) + 1; s.okFrom != want {
		t.Fatalf("okFrom = %d, want %d (the bucket after the last written)", s.okFrom, want)
	}
	for _, c := range unsetCases(at) {
		if got := findIDs(t, s, c.q); !slices.Equal(got, c.want) {
			t.Fatalf("%+v: %v, want %v", c.q, got, c.want)
		}
	}
	// Late spans of trace 1 (all OK so far) into its old bucket, unset: it now matches,
	// its old fragment still uncounted.
	if err := s.WriteTraces(context.Background(), statusBatch("db", ptrace.StatusCodeUnset, 1, at.Add(time.Second))); err != nil {
		t.Fatalf("WriteTraces: %v", err)
	}
	if got, want := findIDs(t, s, storage.TraceQuery{ServiceName: "db", Status: storage.StatusUnset}), []byte{1, 10, 11, 20, 21}; !slices.Equal(got, want) {
		t.Fatalf("after late spans: %v, want %v", got, want)
	}
	// Without the fallback the old fragments would count no OK span, and the all-OK
	// traces 1 and 2 would match: the case above tests it.
	s.okFrom = 0
	if got := findIDs(t, s, storage.TraceQuery{Status: storage.StatusUnset}); !slices.Contains(got, 2) {
		t.Fatalf("without the fallback the old fragments were read right all the same: %v", got)
	}
}

// reopenWithoutMeta returns a store that write filled as a Spoor from before a feature
// did (write sets the test hooks that make it so), with the feature's meta key 00 key
// deleted as such a store lacks it, then reopened: as this Spoor opens that store.
func reopenWithoutMeta(t *testing.T, key byte, write func(old *Store)) *Store {
	t.Helper()
	dir := t.TempDir()
	old, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	open := true
	defer func() {
		if open { // write failed the test
			old.Close()
		}
	}()
	write(old)
	if err := old.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte{prefixMeta, key}) }); err != nil {
		t.Fatalf("delete meta key: %v", err)
	}
	open = false
	if err := old.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
