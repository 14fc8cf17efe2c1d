package badgerstore

import (
	"context"
	"testing"
	"time"

	"github.com/spoortrace/spoor/storage"
)

// TestEstimateTraces: above exactEstimateMax candidates the estimate is the index's
// upper bound (never below the matches, and no more than one per posting entry: here a
// trace's spans of a service are in one batch, so at most the four services' entries
// per trace); at or below it, the count is exact. The store holds 512 traces of four
// services (searchBatch).
func TestEstimateTraces(t *testing.T) {
	s := openSearchStore(t)
	now := time.Now()
	base := now.Add(-time.Hour).Truncate(time.Minute) // openSearchStore's
	for _, tc := range []struct {
		name        string
		q           storage.TraceQuery
		exact       bool
		maxPerHit   int64 // the estimate is at most this many times the matches
		wantNonzero bool
	}{
		{"one service", storage.TraceQuery{ServiceName: "gw"}, false, 1, true},
		// The window starts inside the first batch: its posting counts whole.
		{"one service, a window", storage.TraceQuery{ServiceName: "gw", StartTimeMin: base.Add(30 * time.Second), StartTimeMax: now}, false, 2, true},
		{"service and operation", storage.TraceQuery{ServiceName: "ledger", OperationName: "ledger-op"}, false, 1, true},
		{"errors of a service: few candidates, counted exactly", storage.TraceQuery{ServiceName: "payments", ErrorsOnly: true}, true, 1, true},
		{"an attribute under every service", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{{Key: "shard", Values: []string{"1", "5"}}}}, false, 4, true},
		{"an attribute of one service: exact", storage.TraceQuery{ServiceName: "orders", Attributes: map[string]string{"shard": "3"}}, true, 1, true},
		{"trace duration", storage.TraceQuery{TraceDurationMin: 30 * time.Millisecond}, false, 2, true},
		{"nothing matches", storage.TraceQuery{ServiceName: "nope"}, true, 1, false},
		{"a window with nothing in it", storage.TraceQuery{ServiceName: "gw", StartTimeMin: now.Add(-10 * time.Hour), StartTimeMax: now.Add(-9 * time.Hour)}, true, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.Limit = 100000
			ids, err := s.FindTraceIDs(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			truth := int64(len(ids))
			q.Limit, q.Cursor = 3, "ignored"
			est, err := s.EstimateTraces(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if (truth > 0) != tc.wantNonzero {
				t.Fatalf("the fixture has %d matches", truth)
			}
			if est.Exact != tc.exact || est.Count < truth || est.Count > max(truth, 1)*tc.maxPerHit || (est.Exact && est.Count != truth) {
				t.Fatalf("estimate %+v for %d matches (want exact %v, at most %d× the matches)", est, truth, tc.exact, tc.maxPerHit)
			}
		})
	}
	if _, err := s.EstimateTraces(context.Background(), storage.TraceQuery{DurationMin: -1}); !storage.IsInvalidInput(err) {
		t.Fatalf("negative duration: %v, want invalid input", err)
	}
}

// BenchmarkEstimateTraces: the upper bound read from posting headers (512 candidates),
// and an exact count that verifies its 128 candidates.
func BenchmarkEstimateTraces(b *testing.B) {
	s := openSearchStore(b)
	for _, c := range []struct {
		name string
		q    storage.TraceQuery
	}{
		{"upper-bound/service", storage.TraceQuery{ServiceName: "gw"}},
		{"exact/service-errors", storage.TraceQuery{ServiceName: "payments", ErrorsOnly: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.EstimateTraces(context.Background(), c.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
