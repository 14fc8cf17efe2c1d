package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/benchdata"
)

// BenchmarkWriteTraces writes telemetrygen-like batches: 512 spans in traces of one root
// and three children, 10 attributes on every span. It reports ns/span and, after Close,
// the bytes on disk (LSM + value log) per span; codec1 writes blocks as stores before
// chunked blocks did, for comparison.
func BenchmarkWriteTraces(b *testing.B) {
	for _, name := range []string{"nosync", "sync", "nosync-codec1"} {
		sync := name == "sync"
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(dir, Options{NoSyncWrites: !sync})
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			if name == "nosync-codec1" {
				s.chunkTarget = 0
			}
			const spans = 512
			var pm ptrace.ProtoMarshaler
			b.SetBytes(int64(pm.TracesSize(telemetrygenBatch(1, spans, 4, time.Now()))))
			start := time.Now().Add(-time.Hour)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				td := telemetrygenBatch(uint64(i)+1, spans, 4, start.Add(time.Duration(i)*time.Millisecond))
				b.StartTimer()
				if err := s.WriteTraces(context.Background(), td); err != nil {
					b.Fatalf("WriteTraces: %v", err)
				}
			}
			b.StopTimer()
			total := float64(b.N * spans)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/span")
			if err := s.Close(); err != nil {
				b.Fatalf("Close: %v", err)
			}
			lsm, vlog, err := dirSizes(dir)
			if err != nil {
				b.Fatalf("size: %v", err)
			}
			b.ReportMetric(float64(lsm+vlog)/total, "disk-B/span")
		})
	}
}

// BenchmarkGetTrace reads one 5-span trace (1 root + 4 children) out of 200 blocks of
// 512 spans, with the decoded-block cache disabled (every read decodes its block) and
// with the default cache, and reports the 99th percentile latency.
func BenchmarkGetTrace(b *testing.B) {
	for _, c := range []struct {
		name  string
		cache int64
	}{{"uncached", 1}, {"cached", 0}} {
		b.Run(c.name, func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{NoSyncWrites: true, DecodedBlockCacheSize: c.cache})
			if err != nil {
				b.Fatalf("Open: %v", err)
			}
			defer s.Close()
			start := time.Now().Add(-time.Hour)
			const batches, perTrace = 200, 5
			for i := 0; i < batches; i++ {
				if err := s.WriteTraces(context.Background(), telemetrygenBatch(uint64(i)+1, 512, perTrace, start)); err != nil {
					b.Fatalf("WriteTraces: %v", err)
				}
			}
			ids := make([]pcommon.TraceID, 0, 1024)
			for i := 0; i < 1024; i++ {
				var id pcommon.TraceID
				binary.BigEndian.PutUint64(id[:8], uint64(i*7919%batches)+1)
				binary.BigEndian.PutUint64(id[8:], uint64(i%(512/perTrace))+1)
				ids = append(ids, id)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				td, err := s.GetTrace(context.Background(), ids[i%len(ids)])
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatalf("GetTrace: %v", err)
				}
				if td.SpanCount() != perTrace {
					b.Fatalf("got %d spans", td.SpanCount())
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkReindex measures what Open pays per span of a head lost in a crash: reading
// and decoding a block from the log and recomputing its postings (telemetrygen-like
// batches of 512 spans). Open re-indexes at most HeadMaxSpans spans, on every core
// (all: ns/span is wall time per span; one: a block at a time).
func BenchmarkReindex(b *testing.B) {
	s, err := Open(b.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	defer s.Close()
	const blocks, spans = 64, 512
	start := time.Now().Add(-time.Hour)
	for i := range blocks {
		if err := s.WriteTraces(context.Background(), telemetrygenBatch(uint64(i)+1, spans, 4, start.Add(time.Duration(i)*time.Millisecond))); err != nil {
			b.Fatalf("WriteTraces: %v", err)
		}
	}
	s.idx.mu.RLock()
	logged := slices.Clone(s.idx.head.blocks)
	s.idx.mu.RUnlock()
	if len(logged) != blocks {
		b.Fatalf("%d blocks in the head, want %d", len(logged), blocks)
	}
	emptyHead := func() {
		s.idx.mu.Lock()
		s.idx.head = newHead() // keep the head from growing without bound
		s.idx.mu.Unlock()
	}
	b.Run("one", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l := logged[i%blocks]
			if err := s.reindex(l.seq, l.ref); err != nil {
				b.Fatalf("reindex: %v", err)
			}
			if i%blocks == blocks-1 {
				b.StopTimer()
				emptyHead()
				b.StartTimer()
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
	})
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := s.reindexAll(logged); err != nil {
				b.Fatalf("reindex: %v", err)
			}
			b.StopTimer()
			emptyHead()
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*blocks*spans), "ns/span")
	})
}

// BenchmarkEncodeBlock measures what a block's encoding costs per span and takes per
// span (compressed), whole (codec 1) and in trace-grouped chunks of several targets,
// on the two batches storebench writes: its 10-attribute workload and
// telemetrygen-shaped 512-span requests.
func BenchmarkEncodeBlock(b *testing.B) {
	tgen := benchdata.TelemetrygenShaped(512, 5)
	benchdata.Refresh(tgen.ResourceSpans().At(0).ScopeSpans().At(0).Spans(), 5, rand.New(rand.NewPCG(1, 2)), time.Now())
	batches := map[string]ptrace.Traces{
		"tgen":   tgen,
		"attr10": benchdata.New(512, 50, 20, "bench").Batch(),
	}
	s, err := Open(b.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"attr10", "tgen"} {
		td := batches[name]
		var m ptrace.ProtoMarshaler
		raw, err := m.MarshalTraces(td)
		if err != nil {
			b.Fatal(err)
		}
		w := scratchPool.Get().(*writeScratch)
		w.collectRefs(td)
		w.blk.gids = w.blk.gids[:0]
		for _, r := range w.refs {
			w.blk.gids = append(w.blk.gids, r.gid)
		}
		for _, target := range []int{0, 8 << 10, 16 << 10, 24 << 10, 32 << 10} {
			b.Run(fmt.Sprintf("%s/target=%dKiB", name, target>>10), func(b *testing.B) {
				s.chunkTarget = target
				var v []byte
				for b.Loop() {
					v = s.encodeBlock(v[:0], raw, w.rows, &w.blk)
				}
				spans := float64(td.SpanCount())
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/spans, "ns/span")
				b.ReportMetric(float64(len(v))/spans, "B/span")
				b.ReportMetric(float64(len(raw))/spans, "raw-B/span")
			})
		}
		w.release()
	}
}
