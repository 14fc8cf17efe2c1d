package badgerstore

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/spoortrace/spoor/storage"
)

func hist(ds ...time.Duration) storage.Histogram {
	var h storage.Histogram
	for _, d := range ds {
		h.Add(d, 1)
	}
	return h
}

// TestRollupsSumDeltasAndSurviveRestart: deltas of the same minute and series are
// summed when read, minutes outside the range are left out, a service filter keeps its
// series (and the edges touching it), the sums survive a restart, and compaction of a
// finished hour leaves the sums unchanged while merging its keys into one.
func TestRollupsSumDeltasAndSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.HasRollups() {
		t.Fatal("HasRollups on an empty store")
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	m0, m1, m2 := hour.Add(5*time.Minute), hour.Add(6*time.Minute), hour.Add(70*time.Minute)
	writes := []storage.RollupBatch{
		{RED: []storage.REDRollup{
			{Minute: m0, Service: "pay", Operation: "charge", Kind: 2, Calls: 3, Errors: 1, Duration: hist(time.Millisecond, 2*time.Millisecond, time.Second)},
			{Minute: m1, Service: "pay", Operation: "charge", Kind: 2, Calls: 1.5, Errors: 0, Duration: hist(time.Millisecond)},
			{Minute: m0, Service: "orders", Operation: "POST /", Kind: 2, Calls: 1, Duration: hist(time.Microsecond)},
		}, Edges: []storage.EdgeRollup{
			{Minute: m0, Parent: "orders", Child: "pay", Kind: storage.EdgeRequest, Calls: 2, Errors: 1, Latency: hist(time.Millisecond, time.Millisecond)},
		}},
		{RED: []storage.REDRollup{
			{Minute: m0, Service: "pay", Operation: "charge", Kind: 2, Calls: 4, Errors: 4, Duration: hist(3 * time.Millisecond)},
			{Minute: m2, Service: "pay", Operation: "charge", Kind: 2, Calls: 7},
		}, Edges: []storage.EdgeRollup{
			{Minute: m0, Parent: "orders", Child: "pay", Kind: storage.EdgeRequest, Calls: 1, Latency: hist(time.Second)},
			{Minute: m0, Parent: "pay", Child: "stripe", Kind: storage.EdgePeer, Calls: 1, Errors: 1},
		}},
	}
	for _, b := range writes {
		if err := s.WriteRollups(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store, when string) {
		t.Helper()
		red, err := s.ReadRED(ctx, storage.RollupQuery{Start: m0, End: m1.Add(30 * time.Second), Service: "pay"})
		if err != nil {
			t.Fatal(err)
		}
		if len(red) != 2 {
			t.Fatalf("%s: RED = %+v, want 2 series-minutes", when, red)
		}
		if r := red[0]; !r.Minute.Equal(m0) || r.Calls != 7 || r.Errors != 5 || r.Duration.Total() != 4 {
			t.Errorf("%s: minute 0 = %+v, want calls 7 errors 5, 4 durations", when, r)
		}
		if got, want := red[0].Duration.Counts[storage.HistogramBucket(3*time.Millisecond)], 1.0; got != want {
			t.Errorf("%s: 3ms bucket = %v, want %v", when, got, want)
		}
		if r := red[1]; !r.Minute.Equal(m1) || r.Calls != 1.5 {
			t.Errorf("%s: minute 1 = %+v, want calls 1.5", when, r)
		}
		all, err := s.ReadRED(ctx, storage.RollupQuery{Start: hour, End: hour.Add(2 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 {
			t.Errorf("%s: all RED = %d series-minutes, want 4", when, len(all))
		}
		edges, err := s.ReadEdges(ctx, storage.RollupQuery{Start: m0, End: m0, Service: "stripe"})
		if err != nil {
			t.Fatal(err)
		}
		if len(edges) != 1 || edges[0].Parent != "pay" || edges[0].Kind != storage.EdgePeer || edges[0].Errors != 1 {
			t.Errorf("%s: edges of stripe = %+v", when, edges)
		}
		edges, err = s.ReadEdges(ctx, storage.RollupQuery{Start: m0, End: m0})
		if err != nil {
			t.Fatal(err)
		}
		if len(edges) != 2 || edges[0].Calls != 3 || edges[0].Errors != 1 || edges[0].Latency.Total() != 3 {
			t.Errorf("%s: edges = %+v, want orders→pay with 3 calls, 1 error, 3 latencies", when, edges)
		}
	}
	check(s, "before restart")
	if !s.HasRollups() {
		t.Error("HasRollups false after writes")
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
	if err := s.CompactRollups(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	check(s, "after compaction")
	if n := countKeys(t, s, prefixRollupRED); n != 2 {
		t.Errorf("RED keys after compaction = %d, want 2 (one per finished hour)", n)
	}
}

func countKeys(t *testing.T, s *Store, prefix byte) int {
	t.Helper()
	n := 0
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// TestRollupsDroppedByRetention: rollups of an expired hour go with the spans' buckets.
func TestRollupsDroppedByRetention(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock(time.Now())
	opts := retentionOptions(clock)
	opts.Retention = 2 * time.Hour
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().Add(-5 * time.Hour)
	recent := time.Now().Add(-time.Minute)
	err = s.WriteRollups(ctx, storage.RollupBatch{
		RED:   []storage.REDRollup{{Minute: old, Service: "a", Calls: 1}, {Minute: recent, Service: "a", Calls: 2}},
		Edges: []storage.EdgeRollup{{Minute: old, Parent: "a", Child: "b", Calls: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.retentionPass(ctx); err != nil {
		t.Fatal(err)
	}
	red, err := s.ReadRED(ctx, storage.RollupQuery{Start: old.Add(-time.Hour), End: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if len(red) != 1 || red[0].Calls != 2 {
		t.Errorf("RED after retention = %+v, want only the recent minute", red)
	}
	edges, err := s.ReadEdges(ctx, storage.RollupQuery{Start: old.Add(-time.Hour), End: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if len(edges) != 0 {
		t.Errorf("edges after retention = %+v, want none", edges)
	}
}

func TestAlertState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if doc, err := s.GetAlertState(ctx); err != nil || doc != nil {
		t.Fatalf("GetAlertState on an empty store = %q, %v", doc, err)
	}
	if err := s.PutAlertState(ctx, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAlertState(ctx, []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if doc, err := s.GetAlertState(ctx); err != nil || string(doc) != `{"a":2}` {
		t.Fatalf("GetAlertState after restart = %q, %v", doc, err)
	}
}

func TestHistogramBuckets(t *testing.T) {
	prevHi := time.Duration(0)
	for i := range storage.HistogramBuckets {
		lo, hi := storage.HistogramBounds(i)
		if lo != prevHi || hi <= lo {
			t.Fatalf("bucket %d = [%v, %v), previous ended at %v", i, lo, hi, prevHi)
		}
		if storage.HistogramBucket(lo) != i || (hi != math.MaxInt64 && storage.HistogramBucket(hi-1) != i) {
			t.Fatalf("bucket %d bounds [%v, %v) do not map back to it", i, lo, hi)
		}
		prevHi = hi
	}
	if storage.RollupStep*60 != bucketWidth {
		t.Fatalf("a bucket must hold 60 rollup minutes")
	}
}

// TestCompactionLosesNoConcurrentDelta: deltas written into an old hour while it is
// being compacted (late spans) are neither lost nor counted twice.
func TestCompactionLosesNoConcurrentDelta(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().UTC().Truncate(time.Hour).Add(-3*time.Hour + 5*time.Minute)
	const writers, perWriter = 4, 200
	done := make(chan error, writers)
	for range writers {
		go func() {
			for range perWriter {
				err := s.WriteRollups(ctx, storage.RollupBatch{
					RED:   []storage.REDRollup{{Minute: old, Service: "a", Operation: "op", Calls: 1, Duration: hist(time.Millisecond)}},
					Edges: []storage.EdgeRollup{{Minute: old, Parent: "a", Child: "b", Calls: 1}},
				})
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	compacting, passes := true, 0
	for compacting {
		if err := s.CompactRollups(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		passes++
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			for range writers - 1 {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			compacting = false
		default:
		}
	}
	if passes < 2 {
		t.Fatalf("only %d compaction passes ran during the writes", passes)
	}
	if err := s.CompactRollups(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	red, err := s.ReadRED(ctx, storage.RollupQuery{Start: old, End: old})
	if err != nil {
		t.Fatal(err)
	}
	edges, err := s.ReadEdges(ctx, storage.RollupQuery{Start: old, End: old})
	if err != nil {
		t.Fatal(err)
	}
	if len(red) != 1 || red[0].Calls != writers*perWriter || red[0].Duration.Total() != writers*perWriter ||
		len(edges) != 1 || edges[0].Calls != writers*perWriter {
		t.Fatalf("after concurrent compaction: RED %+v, edges %+v; want %d calls each", red, edges, writers*perWriter)
	}
	if n := countKeys(t, s, prefixRollupRED); n != 1 {
		t.Errorf("%d RED keys left, want 1", n)
	}
}
