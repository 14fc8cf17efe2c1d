package badgerstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

type depSpec struct {
	id, parent byte
	service    string
	kind       ptrace.SpanKind
	peer       string
	failed     bool
}

func depBatch(trace byte, start time.Time, specs ...depSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range specs {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0xd0, trace})
		sp.SetSpanID(pcommon.SpanID{s.id})
		if s.parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{s.parent})
		}
		sp.SetName("op")
		sp.SetKind(s.kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		if s.peer != "" {
			sp.Attributes().PutStr("service.peer.name", s.peer)
		}
		if s.failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

func deps(t *testing.T, s *Store, end time.Time, lookback time.Duration) string {
	t.Helper()
	links, err := s.GetDependencies(context.Background(), end, lookback)
	if err != nil {
		t.Fatalf("GetDependencies: %v", err)
	}
	return fmt.Sprint(links)
}

// The wait: a client span naming a peer counts as a call to it once it has been
// unanswered for two turns of the generations, and a child whose parent never came is
// counted as unmatched. Flushes turn the generations when the wait has passed.
func TestDependencyWaitAndPeers(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true, DependencyWait: time.Minute, DependencyFlushInterval: time.Hour})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	now := time.Now()
	write(t, s, depBatch(1, now,
		depSpec{id: 1, service: "gw", kind: ptrace.SpanKindServer},
		depSpec{id: 2, parent: 1, service: "gw", kind: ptrace.SpanKindClient, peer: "redis", failed: true},
		depSpec{id: 3, parent: 1, service: "gw", kind: ptrace.SpanKindClient, peer: "auth"},
	))
	// Zipkin shared span: the server side has the client's span ID and its parent.
	write(t, s, depBatch(1, now, depSpec{id: 3, parent: 1, service: "auth", kind: ptrace.SpanKindServer}))
	// A child of a shared span belongs under its server side.
	write(t, s, depBatch(1, now, depSpec{id: 4, parent: 3, service: "auth", kind: ptrace.SpanKindInternal}))
	// Its parent never comes.
	write(t, s, depBatch(2, now, depSpec{id: 9, parent: 8, service: "orphan", kind: ptrace.SpanKindServer}))

	if got, want := deps(t, s, now, time.Hour), "[{gw auth 1 0}]"; got != want {
		t.Errorf("before the wait: %s, want %s", got, want)
	}
	for i := 1; i <= 2; i++ {
		if err := s.flushDependencies(now.Add(time.Duration(i) * time.Minute)); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	if got, want := deps(t, s, now, time.Hour), "[{gw auth 1 0} {gw redis 1 1}]"; got != want {
		t.Errorf("after the wait: %s, want %s", got, want)
	}
	st := s.Stats()
	if st.DependencyPeerCalls != 1 || st.DependencyUnmatched != 1 || st.DependencyMatched != 4 || st.DependencyFlushes != 2 {
		t.Errorf("stats: peer %d unmatched %d matched %d flushes %d, want 1 1 4 2",
			st.DependencyPeerCalls, st.DependencyUnmatched, st.DependencyMatched, st.DependencyFlushes)
	}
}

// A full generation turns over early: memory stays bounded, and a parent that left
// both generations leaves its late child unmatched.
func TestDependencyCapacity(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true, DependencySpans: 4, DependencyPending: 2})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	now := time.Now()
	write(t, s, depBatch(1, now, depSpec{id: 1, service: "a", kind: ptrace.SpanKindServer}))
	for i := byte(10); i < 30; i++ {
		write(t, s, depBatch(2, now, depSpec{id: i, service: "noise", kind: ptrace.SpanKindServer}))
	}
	write(t, s, depBatch(1, now, depSpec{id: 2, parent: 1, service: "b", kind: ptrace.SpanKindServer}))
	for i := byte(40); i < 50; i++ { // children waiting for parents that never come
		write(t, s, depBatch(3, now, depSpec{id: i, parent: i + 100, service: "c", kind: ptrace.SpanKindServer}))
	}
	s.deps.mu.Lock()
	spans, pending := s.deps.m.Sizes(), s.deps.m.Pending()
	sizes := []int{spans[0], spans[1], len(pending[0]), len(pending[1])}
	s.deps.mu.Unlock()
	if sizes[0] > 4 || sizes[1] > 4 || sizes[2] > 2 || sizes[3] > 2 {
		t.Errorf("generation sizes %v exceed the bounds 4, 4, 2, 2", sizes)
	}
	if got := deps(t, s, now, time.Hour); got != "[]" {
		t.Errorf("parent evicted before its child: %s, want []", got)
	}
	if st := s.Stats(); st.DependencyUnmatched < 7 {
		t.Errorf("unmatched %d, want at least 7 of the 11 orphans expired by capacity", st.DependencyUnmatched)
	}
}

func depKeysOfBucket(t *testing.T, s *Store, b uint32) int {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: appendDepKey(nil, b, 0)[:5]})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("count keys: %v", err)
	}
	return n
}

// Deltas of an old bucket are merged into one key; retention drops the bucket's keys
// and its totals; a restart reads back exactly what is left.
func TestDependencyCompactionAndRetention(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock(time.Now())
	opts := retentionOptions(clock)
	opts.Retention = 72 * time.Hour
	opts.DependencyFlushInterval = time.Hour
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Open's retention pass runs in the background: let it finish before writing
	// an expired bucket it would drop.
	for deadline := time.Now().Add(10 * time.Second); s.Stats().RetentionPasses == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Open's retention pass did not run")
		}
	}
	now := clock.now()
	expired, kept := now.Add(-80*time.Hour), now.Add(-3*time.Hour)
	kb, eb := bucketOf(unixNs(kept)), bucketOf(unixNs(expired))
	for i := byte(1); i <= 3; i++ {
		for _, at := range []time.Time{expired, kept} {
			write(t, s, depBatch(i, at,
				depSpec{id: 1, service: "a", kind: ptrace.SpanKindServer},
				depSpec{id: 2, parent: 1, service: "b", kind: ptrace.SpanKindServer, failed: i == 2}))
		}
		// Each flush writes a delta; the second and third are merged with the first.
		if err := s.flushDependencies(now); err != nil {
			t.Fatalf("flush: %v", err)
		}
		if n := depKeysOfBucket(t, s, kb); n != 1 {
			t.Errorf("flush %d: %d keys in a bucket three hours old, want 1 (compacted)", i, n)
		}
	}
	if got, want := deps(t, s, now, 100*time.Hour), "[{a b 6 2}]"; got != want {
		t.Errorf("before retention: %s, want %s", got, want)
	}
	if n := depKeysOfBucket(t, s, eb); n != 1 {
		t.Errorf("%d keys in the expired bucket before the pass, want 1", n)
	}
	if _, err := s.retentionPass(context.Background()); err != nil {
		t.Fatalf("retention pass: %v", err)
	}
	if n := depKeysOfBucket(t, s, eb); n != 0 {
		t.Errorf("%d keys left in the expired bucket", n)
	}
	if got, want := deps(t, s, now, 100*time.Hour), "[{a b 3 1}]"; got != want {
		t.Errorf("after retention: %s, want %s", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if got, want := deps(t, s, now, 100*time.Hour), "[{a b 3 1}]"; got != want {
		t.Errorf("after restart: %s, want %s", got, want)
	}
}

// TestNoDependencies: with counting off, a parent and child of two services make no
// edge, in memory or on disk; the same writes with it on do (the test can fail).
func TestNoDependencies(t *testing.T) {
	now := time.Now()
	for _, off := range []bool{true, false} {
		dir := t.TempDir()
		s, err := Open(dir, Options{NoSyncWrites: true, NoDependencies: off})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WriteTraces(context.Background(), depBatch(1, now,
			depSpec{id: 1, service: "gw", kind: ptrace.SpanKindClient},
			depSpec{id: 2, parent: 1, service: "orders", kind: ptrace.SpanKindServer})); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(dir, Options{NoSyncWrites: true, NoDependencies: off}); err != nil {
			t.Fatal(err)
		}
		got := deps(t, s, now.Add(time.Minute), time.Hour)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "[]", false: "[{gw orders 1 0}]"}[off]; got != want {
			t.Errorf("NoDependencies=%v: dependencies %s, want %s", off, got, want)
		}
	}
}
