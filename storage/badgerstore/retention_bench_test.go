package badgerstore

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRetentionPass measures one retention pass dropping the oldest of seven hours
// of 512-span batches with random payloads (80 batches per hour, ~3.5 MiB an hour),
// right after they were written: the write stall of DropPrefix and the bytes
// reclaimed. DropPrefix waits for running compactions, flushes the memtable and
// compacts all of level 0 whether or not it holds the prefixes (Badger's
// levelsController.dropPrefixes), so the stall grows with level 0, not with the bucket.
// With 16 MiB value-log files an hour is less than half a file, so GC reclaims nothing
// yet: a file goes once half of it is dead.
func BenchmarkRetentionPass(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		now := time.Now()
		clock := newTestClock(now)
		opts := Options{NoSyncWrites: true, ValueLogFileSize: 16 << 20, RetentionInterval: time.Hour, Now: clock.now}
		s, err := Open(b.TempDir(), opts)
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		for h := 7; h >= 1; h-- {
			start := now.Truncate(time.Hour).Add(-time.Duration(h)*time.Hour + 10*time.Minute)
			for i := range 80 {
				if err := s.WriteTraces(ctx, payloadBatch(uint64(h*1000+i+1), 512, start.Add(time.Duration(i)*time.Second))); err != nil {
					b.Fatalf("WriteTraces: %v", err)
				}
			}
		}
		before := diskTotal(s)
		// The oldest hour (7 hours ago) expires; the others do not.
		clock.set(now.Truncate(time.Hour).Add(66*time.Hour + time.Minute))
		b.StartTimer()
		res, err := s.retentionPass(ctx)
		b.StopTimer()
		if err != nil {
			b.Fatalf("retention pass: %v", err)
		}
		if res.buckets != 1 {
			b.Fatalf("dropped %d buckets, want 1", res.buckets)
		}
		b.ReportMetric(float64(res.stall.Microseconds())/1000, "stall-ms")
		b.ReportMetric(float64(res.reclaimed)/(1<<20), "reclaimed-MiB")
		b.ReportMetric(float64(before)/(1<<20), "before-MiB")
		b.ReportMetric(float64(res.gcRewrites), "vlog-rewrites")
		if err := s.Close(); err != nil {
			b.Fatalf("Close: %v", err)
		}
		b.StartTimer()
	}
}
