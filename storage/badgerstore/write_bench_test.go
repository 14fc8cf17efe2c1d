package badgerstore

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BenchmarkWriteTraces writes telemetrygen-like batches: 512 spans in traces of one root
// and three children, 10 attributes on every span. It reports ns/span and, after Close,
// the bytes on disk (LSM + value log) per span.
func BenchmarkWriteTraces(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "nosync"
		if sync {
			name = "sync"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(dir, Options{NoSyncWrites: !sync})
			if err != nil {
				b.Fatalf("Open: %v", err)
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

// BenchmarkGetTrace reads one 4-span trace out of 100 000 spans.
func BenchmarkGetTrace(b *testing.B) {
	s, err := Open(b.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	defer s.Close()
	start := time.Now().Add(-time.Hour)
	const batches = 200
	for i := 0; i < batches; i++ {
		if err := s.WriteTraces(context.Background(), telemetrygenBatch(uint64(i)+1, 512, 4, start)); err != nil {
			b.Fatalf("WriteTraces: %v", err)
		}
	}
	ids := make([]pcommon.TraceID, 0, 1024)
	for i := 0; i < 1024; i++ {
		td := telemetrygenBatch(uint64(i%batches)+1, 4*(i%128+1), 4, start)
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		ids = append(ids, spans.At(spans.Len()-1).TraceID())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		td, err := s.GetTrace(context.Background(), ids[i%len(ids)])
		if err != nil {
			b.Fatalf("GetTrace: %v", err)
		}
		if td.SpanCount() != 4 {
			b.Fatalf("got %d spans", td.SpanCount())
		}
	}
}
