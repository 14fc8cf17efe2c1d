package badgerstore

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/spoortrace/spoor/internal/benchdata"
)

// BenchmarkMergeSegments merges the seven level-0 segments of one bucket, flushed from
// heads of 2^16 storebench spans (10 attributes, 50 services), as the flusher would
// with an eighth. It reports the time per merged span, the merged pages' bytes per
// span (compressed), the bytes allocated, and the peak growth of the Go heap during
// the merge, collected often (GOGC=10, so that the peak is about what the merge holds,
// not garbage awaiting a collection; the time includes those collections). A merge
// that held every page of its segments grew with them: a level-2 merge of a busy
// bucket reads hundreds of MB.
func BenchmarkMergeSegments(b *testing.B) {
	const head = 1 << 16
	var spans, peak, alloc, out float64
	for b.Loop() {
		b.StopTimer()
		s, err := Open(b.TempDir(), Options{NoSyncWrites: true, NoDependencies: true, HeadMaxSpans: head})
		if err != nil {
			b.Fatal(err)
		}
		// Spans of a few seconds: all in one hour bucket.
		w := benchdata.New(1e9, 50, 20, "bench")
		for n := 0; n < 7*head; n += benchdata.BatchSpans {
			if err := s.WriteTraces(context.Background(), w.Batch()); err != nil {
				b.Fatal(err)
			}
			if err := s.WaitIndex(); err != nil {
				b.Fatal(err)
			}
		}
		s.idx.mu.RLock()
		var group []*segment
		for _, list := range s.idx.segs {
			if len(list) > len(group) {
				group = list
			}
		}
		s.idx.mu.RUnlock()
		if len(group) != 7 {
			b.Fatalf("%d segments in the fullest bucket, want 7", len(group))
		}
		for _, sg := range group {
			spans += float64(len(sg.blocks) * benchdata.BatchSpans) // about: a block is a batch
		}
		runtime.GC()
		base := heapObjects()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		done, top := make(chan struct{}), make(chan uint64)
		go func() {
			hi := base
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				hi = max(hi, heapObjects())
				select {
				case <-done:
					top <- hi
					return
				case <-t.C:
				}
			}
		}()
		gc := debug.SetGCPercent(10)
		b.StartTimer()
		if err := s.mergeSegments(group); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		debug.SetGCPercent(gc)
		close(done)
		peak += float64(<-top - base)
		s.idx.mu.RLock()
		for _, sg := range s.idx.segs[group[0].bucket] {
			if sg.level == 1 {
				out += float64(sg.bytes)
			}
		}
		s.idx.mu.RUnlock()
		runtime.ReadMemStats(&ms1)
		alloc += float64(ms1.TotalAlloc - ms0.TotalAlloc)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
	b.ReportMetric(peak/float64(b.N)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(alloc/float64(b.N)/(1<<20), "alloc-MiB")
	b.ReportMetric(out/spans, "page-B/span")
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkWriteSegments writes a full head of 2^17 storebench spans (10 attributes,
// 50 services) as segments, as a flush does: the postings laid out by field, encoded,
// compressed and written (not installed). ns/span is per span of the head.
func BenchmarkWriteSegments(b *testing.B) {
	const spans = 1 << 17
	s, err := Open(b.TempDir(), Options{NoSyncWrites: true, NoDependencies: true, HeadMaxSpans: 4 * spans})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	w := benchdata.New(spans, 50, 20, "bench") // storebench's spacing: batches 28 s apart
	for n := 0; n < spans; n += benchdata.BatchSpans {
		if err := s.WriteTraces(context.Background(), w.Batch()); err != nil {
			b.Fatal(err)
		}
	}
	s.idx.mu.RLock()
	h := s.idx.head
	s.idx.mu.RUnlock()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.writeSegments(h); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*h.spans), "ns/span")
}
