package badgerstore

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/spoortrace/spoor/storage"
)

// testClock is the retention loop's clock, moved forward by the tests.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}

func (c *testClock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// retentionOptions keep the store small enough to show reclaimed files in a test:
// 1 MiB value-log files (value-log GC never collects the newest file) and 4 MiB
// memtables. The loop runs at Open and then not within the test.
func retentionOptions(clock *testClock) Options {
	return Options{
		NoSyncWrites:      true,
		ValueLogFileSize:  1 << 20,
		MemTableSize:      4 << 20,
		RetentionInterval: time.Hour,
		Now:               clock.now,
	}
}

// payloadBatch is telemetrygenBatch with a random 64-byte attribute on every span, so
// that blocks do not compress to almost nothing and disk use is measurable.
func payloadBatch(seed uint64, spans int, start time.Time) ptrace.Traces {
	td := telemetrygenBatch(seed, spans, 4, start)
	rng := rand.New(rand.NewPCG(seed, 42))
	var buf [64]byte
	sps := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < sps.Len(); i++ {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		sps.At(i).Attributes().PutStr("payload", hex.EncodeToString(buf[:]))
	}
	return td
}

func firstTraceID(td ptrace.Traces) pcommon.TraceID {
	return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
}

func write(t *testing.T, s *Store, td ptrace.Traces) {
	t.Helper()
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatalf("WriteTraces: %v", err)
	}
}

func diskTotal(s *Store) int64 {
	lsm, vlog := s.DiskSize()
	return lsm + vlog
}

// writeHours writes batches of spans starting in each hour hoursAgo before now (10
// minutes into the hour) and returns the first trace ID of each hour's first batch.
func writeHours(t *testing.T, s *Store, now time.Time, hoursAgo []int, batchesPerHour int) []pcommon.TraceID {
	t.Helper()
	var ids []pcommon.TraceID
	for _, h := range hoursAgo {
		start := now.Truncate(time.Hour).Add(-time.Duration(h)*time.Hour + 10*time.Minute)
		for b := range batchesPerHour {
			td := payloadBatch(uint64(h*1000+b+1), 512, start.Add(time.Duration(b)*time.Second))
			if b == 0 {
				ids = append(ids, firstTraceID(td))
			}
			write(t, s, td)
		}
		// An hour of real time flushes the index head many times (HeadMaxAge is 5
		// minutes): each hour's segment pages land in the value log with its blocks,
		// not all in the newest file at Close.
		if err := s.flushHead(); err != nil {
			t.Fatalf("flush index: %v", err)
		}
	}
	return ids
}

func TestRetentionDropsExpiredBucketsAndFreesDisk(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := newTestClock(now)
	dir := t.TempDir()
	s, err := Open(dir, retentionOptions(clock))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	old := writeHours(t, s, now, []int{10, 9, 8, 7, 6}, 16)
	// A trace with spans on both sides of the cut: its old block goes, its new one stays.
	straddle := telemetrygenBatch(77, 4, 4, now.Add(-6*time.Hour))
	write(t, s, straddle)
	straddleNew := telemetrygenBatch(77, 4, 4, now)
	straddleNew.ResourceSpans().At(0).ScopeSpans().At(0).Spans().RemoveIf(func(sp ptrace.Span) bool {
		return sp.ParentSpanID().IsEmpty() // keep the three children only
	})
	write(t, s, straddleNew)
	recent := payloadBatch(999, 512, now)
	write(t, s, recent)
	recentID := firstTraceID(recent)

	window := storage.TraceQuery{ServiceName: "telemetrygen", StartTimeMin: now.Add(-11 * time.Hour),
		StartTimeMax: now.Add(-5 * time.Hour), Limit: 100000}
	ids, err := s.FindTraceIDs(ctx, window)
	if err != nil {
		t.Fatalf("FindTraceIDs before retention: %v", err)
	}
	for _, id := range old {
		if !slices.Contains(ids, id) {
			t.Fatalf("before retention, old trace %x is not found", id)
		}
		if td, err := s.GetTrace(ctx, id); err != nil || td.SpanCount() != 4 {
			t.Fatalf("before retention, GetTrace(%x) = %d spans, %v", id, td.SpanCount(), err)
		}
	}
	lsm0, vlog0 := s.DiskSize()
	before := lsm0 + vlog0

	// 70 hours later, with 72h retention, the hours 10..6 before now have expired; the
	// current one has not.
	clock.advance(70 * time.Hour)
	res, err := s.retentionPass(ctx)
	if err != nil {
		t.Fatalf("retention pass: %v", err)
	}
	lsm1, vlog1 := s.DiskSize()
	after := lsm1 + vlog1
	t.Logf("lsm %d -> %d, vlog %d -> %d", lsm0, lsm1, vlog0, vlog1)
	t.Logf("disk %d -> %d bytes (%.0f%% reclaimed); %d buckets dropped, %d value-log files rewritten; "+
		"write stall %v, pass %v", before, after, 100*float64(before-after)/float64(before), res.buckets,
		res.gcRewrites, res.stall, res.duration)
	if res.buckets != 5 {
		t.Errorf("buckets dropped = %d, want the 5 expired hours", res.buckets)
	}
	if after > before/3 {
		t.Errorf("disk after retention = %d bytes, want at most a third of the %d before", after, before)
	}
	if st := s.Stats(); st.BucketsDropped != 5 || st.BytesReclaimed <= 0 || st.RetentionPasses < 2 || st.LastRetentionPass <= 0 {
		t.Errorf("stats after retention = %+v, want 5 buckets dropped, bytes reclaimed, at least 2 passes (Open's and ours)", st)
	}

	checkExpired := func(s *Store) {
		t.Helper()
		for _, id := range old {
			if _, err := s.GetTrace(ctx, id); !errors.Is(err, storage.ErrTraceNotFound) {
				t.Errorf("GetTrace(expired %x) err = %v, want ErrTraceNotFound", id, err)
			}
		}
		for _, q := range []storage.TraceQuery{window, {ServiceName: "telemetrygen", Limit: 100000}, {Limit: 100000}} {
			ids, err := s.FindTraceIDs(ctx, q)
			if err != nil {
				t.Fatalf("FindTraceIDs(%+v) after retention: %v", q, err)
			}
			for _, id := range old {
				if slices.Contains(ids, id) {
					t.Errorf("FindTraceIDs(%+v) after retention returns expired trace %x", q, id)
				}
			}
			if q.StartTimeMax.IsZero() && !slices.Contains(ids, recentID) {
				t.Errorf("FindTraceIDs(%+v) after retention misses the recent trace", q)
			}
		}
		if td, err := s.GetTrace(ctx, recentID); err != nil || td.SpanCount() != 4 {
			t.Errorf("GetTrace(recent) = %d spans, %v; want 4", td.SpanCount(), err)
		}
		if td, err := s.GetTrace(ctx, firstTraceID(straddle)); err != nil || td.SpanCount() != 3 {
			t.Errorf("GetTrace(trace across the cut) = %d spans, %v; want its 3 recent spans", td.SpanCount(), err)
		}
	}
	checkExpired(s)

	// The drop is on disk: after a restart the expired traces stay gone.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = Open(dir, retentionOptions(clock))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	checkExpired(s)
}

// TestRetentionSkipsCachedBlocksOfDroppedBuckets: a search fills the decoded-block
// cache; a dropped block must not come back from it.
func TestRetentionSkipsCachedBlocksOfDroppedBuckets(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := newTestClock(now)
	s, err := Open(t.TempDir(), retentionOptions(clock))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	old := telemetrygenBatch(5, 64, 4, now.Add(-5*time.Hour))
	write(t, s, old)
	// FindTraces fills the cache with the old block.
	if tds, err := s.FindTraces(ctx, storage.TraceQuery{StartTimeMin: now.Add(-6 * time.Hour), Limit: 1000}); err != nil || len(tds) != 16 {
		t.Fatalf("FindTraces = %d traces, %v; want 16", len(tds), err)
	}
	clock.advance(72 * time.Hour)
	if _, err := s.retentionPass(ctx); err != nil {
		t.Fatalf("retention pass: %v", err)
	}
	if _, err := s.GetTrace(ctx, firstTraceID(old)); !errors.Is(err, storage.ErrTraceNotFound) {
		t.Fatalf("GetTrace of a dropped trace whose block was cached: err = %v, want ErrTraceNotFound", err)
	}
}

func TestDiskCapDropsOldestBucketsFirst(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := newTestClock(now)
	dir := t.TempDir()
	s, err := Open(dir, retentionOptions(clock))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Six hours, oldest first, all within the retention, and the current hour.
	hours := []int{6, 5, 4, 3, 2, 1, 0}
	ids := writeHours(t, s, now, hours, 4)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	lsm, vlog, err := dirSizes(dir)
	if err != nil {
		t.Fatalf("dirSizes: %v", err)
	}
	total := lsm + vlog

	opts := retentionOptions(clock)
	opts.MaxDiskBytes = total / 2
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen with a cap: %v", err)
	}
	defer s.Close()
	// Open's pass enforces the cap already; this one waits for it and must find the
	// store under the cap.
	if _, err := s.retentionPass(ctx); err != nil {
		t.Fatalf("retention pass: %v", err)
	}
	size := diskTotal(s)
	st := s.Stats()
	t.Logf("disk %d bytes, cap %d: %d after the cap; %d buckets dropped, write stall %v", total, opts.MaxDiskBytes,
		size, st.BucketsDropped, st.LastDropStall)
	if size > opts.MaxDiskBytes {
		t.Errorf("disk %d bytes after the cap pass, want at most %d", size, opts.MaxDiskBytes)
	}
	var found []bool
	for _, id := range ids {
		_, err := s.GetTrace(ctx, id)
		if err != nil && !errors.Is(err, storage.ErrTraceNotFound) {
			t.Fatalf("GetTrace: %v", err)
		}
		found = append(found, err == nil)
	}
	// Oldest first: a prefix of the hours is gone, the rest is kept, the current
	// hour always.
	gone := slices.Index(found, true)
	if gone <= 0 || slices.Contains(found[gone:], false) || !found[len(found)-1] {
		t.Fatalf("traces found per hour (oldest first) = %v, want some oldest hours gone and every later one kept", found)
	}
	if st.BucketsDropped != int64(gone) {
		t.Errorf("BucketsDropped = %d, want %d", st.BucketsDropped, gone)
	}
}

// TestDiskCapNeverDropsTheCurrentBucket: a cap nothing can meet leaves the current
// hour alone.
func TestDiskCapNeverDropsTheCurrentBucket(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := newTestClock(now)
	opts := retentionOptions(clock)
	opts.MaxDiskBytes = 1
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ids := writeHours(t, s, now, []int{1, 0}, 4)
	if _, err := s.retentionPass(ctx); err != nil {
		t.Fatalf("retention pass: %v", err)
	}
	if _, err := s.GetTrace(ctx, ids[0]); !errors.Is(err, storage.ErrTraceNotFound) {
		t.Errorf("trace of the previous hour: err = %v, want dropped by the cap", err)
	}
	if td, err := s.GetTrace(ctx, ids[1]); err != nil || td.SpanCount() != 4 {
		t.Errorf("trace of the current hour = %d spans, %v; want kept", td.SpanCount(), err)
	}
}

// TestWritesWaitForDrop: DropPrefix blocks Badger's writes; WriteTraces waits for it
// instead of failing with ErrBlockedWrites.
func TestWritesWaitForDrop(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := newTestClock(now)
	s, err := Open(t.TempDir(), retentionOptions(clock))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	writeHours(t, s, now, []int{9, 8, 7}, 2)
	clock.advance(70 * time.Hour)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.WriteTraces(ctx, telemetrygenBatch(uint64(100000+w*10000+i), 64, 4, time.Now())); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 3 {
		if _, err := s.retentionPass(ctx); err != nil {
			t.Errorf("retention pass: %v", err)
		}
		writeHours(t, s, now, []int{9}, 1) // something to drop again
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("WriteTraces during a drop: %v", err)
	}
}

func TestCloseDuringRetentionPass(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	now := time.Now()
	clock := newTestClock(now)
	dir := t.TempDir()
	s, err := Open(dir, retentionOptions(clock))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	writeHours(t, s, now, []int{9, 8, 7, 6}, 4)
	recent := payloadBatch(999, 64, now)
	write(t, s, recent)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Open's pass drops the expired hours and then waits in the hook until Close has
	// been called: the pass must end early, and Close must wait for it.
	clock.advance(70 * time.Hour)
	entered, closing := make(chan struct{}), make(chan struct{})
	opts := retentionOptions(clock)
	opts.retentionHook = func(step string) {
		if step == "dropped" {
			close(entered)
			<-closing
			time.Sleep(20 * time.Millisecond) // let Close cancel the pass
		}
	}
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	<-entered
	close(closing)
	if err := s.Close(); err != nil {
		t.Fatalf("Close during a retention pass: %v", err)
	}
	if _, err := s.retentionPass(context.Background()); !errors.Is(err, errStoreClosed) {
		t.Fatalf("retention pass after Close: err = %v, want errStoreClosed", err)
	}

	s, err = Open(dir, retentionOptions(clock))
	if err != nil {
		t.Fatalf("reopen after Close during a pass: %v", err)
	}
	defer s.Close()
	if td, err := s.GetTrace(context.Background(), firstTraceID(recent)); err != nil || td.SpanCount() != 4 {
		t.Fatalf("GetTrace(recent) after Close during a pass = %d spans, %v", td.SpanCount(), err)
	}
}

func TestBucketsBelowSeeksPresentBuckets(t *testing.T) {
	now := time.Now()
	// The loop's clock stands in 1970, so that Open's pass does not drop what follows.
	s, err := Open(t.TempDir(), retentionOptions(newTestClock(time.Unix(3600, 0))))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	// A span from 1970 (bucket 0) and one from three hours ago: two seeks, not
	// hundreds of thousands of prefixes.
	write(t, s, telemetrygenBatch(1, 4, 4, time.Unix(0, 1)))
	write(t, s, telemetrygenBatch(2, 4, 4, now.Add(-3*time.Hour)))
	write(t, s, telemetrygenBatch(3, 4, 4, now))
	got, err := s.bucketsBelow(bucketOf(unixNs(now)))
	if err != nil {
		t.Fatalf("bucketsBelow: %v", err)
	}
	want := []uint32{0, bucketOf(unixNs(now.Add(-3 * time.Hour)))}
	if !slices.Equal(got, want) {
		t.Fatalf("bucketsBelow = %v, want %v", got, want)
	}
}

// TestIndexInstallsNothingOfADroppedBucket races retention with a merge and a flush of
// the bucket it drops: a merge whose segments retention dropped after it picked them,
// and a head holding postings of the bucket, flushed after the drop. Neither may
// bring back a segment directory or pages of the dropped bucket, in memory or on disk.
func TestIndexInstallsNothingOfADroppedBucket(t *testing.T) {
	now := time.Now()
	clock := newTestClock(now)
	s, err := Open(t.TempDir(), retentionOptions(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	start := now.Truncate(time.Hour).Add(-5*time.Hour + 10*time.Minute)
	b := bucketOf(uint64(start.UnixNano()))
	for i := range 3 { // three level-0 segments of one bucket
		write(t, s, payloadBatch(uint64(i+1), 512, start.Add(time.Duration(i)*time.Second)))
		if err := s.flushHead(); err != nil {
			t.Fatal(err)
		}
	}
	s.idx.mu.RLock()
	group := slices.Clone(s.idx.segs[b])
	s.idx.mu.RUnlock()
	if len(group) != 3 {
		t.Fatalf("bucket %d has %d segments, want 3", b, len(group))
	}
	// A batch of the bucket in the head, not flushed yet.
	write(t, s, payloadBatch(99, 512, start.Add(10*time.Minute)))

	if err := s.dropBuckets(context.Background(), []uint32{b}, &passResult{}); err != nil {
		t.Fatal(err)
	}
	// The merge read its group before the drop: its pages are gone now, and it
	// writes what it can of them, which must not be installed.
	if err := s.mergeSegments(group); err != nil {
		t.Fatalf("merge: %v", err)
	}
	if err := s.flushHead(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if got := s.Stats().IndexDiscardedSegments; got != 2 {
		t.Errorf("discarded segments = %d, want 2 (the merge's and the flush's)", got)
	}
	s.idx.mu.RLock()
	left := len(s.idx.segs[b])
	s.idx.mu.RUnlock()
	if left != 0 {
		t.Errorf("index holds %d segments of dropped bucket %d", left, b)
	}
	assertNoBucketKeys(t, s, b)

	// Reopened, the store has no segment of the bucket either.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(s.dir, retentionOptions(clock)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.idx.segs[b]); n != 0 {
		t.Errorf("reopened index holds %d segments of dropped bucket %d", n, b)
	}
	assertNoBucketKeys(t, s, b)
}

// assertNoBucketKeys fails t if s holds a segment directory or page of bucket b.
func assertNoBucketKeys(t *testing.T, s *Store, b uint32) {
	t.Helper()
	err := s.db.View(func(txn *badger.Txn) error {
		for _, p := range []byte{prefixSegPage, prefixSegDir} {
			prefix := binary.BigEndian.AppendUint32([]byte{p}, b)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			n := 0
			for it.Rewind(); it.Valid(); it.Next() {
				n++
			}
			it.Close()
			if n > 0 {
				t.Errorf("%d keys of prefix %#x in dropped bucket %d", n, p, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
