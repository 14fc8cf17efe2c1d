package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/diskusage"
	"github.com/spoortrace/spoor/storage/badgerstore"
)

// tgenBatch is a batch shaped like telemetrygen's traces (`telemetrygen traces`, one
// child span per root): one service, spans named as telemetrygen names them, its
// attributes, random IDs.
func tgenBatch(seed uint64, spans int, start time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "telemetrygen")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	out := ss.Spans()
	out.EnsureCapacity(spans)
	var tid pcommon.TraceID
	var root pcommon.SpanID
	for i := 0; i < spans; i++ {
		sp := out.AppendEmpty()
		h := seed*0x9E3779B97F4A7C15 + uint64(i)*0xBF58476D1CE4E5B9
		if i%2 == 0 {
			binary.BigEndian.PutUint64(tid[:8], h^0x94D049BB133111EB)
			binary.BigEndian.PutUint64(tid[8:], h*0xD6E8FEB86659FD93+1)
		}
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], h|1)
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		ts := start.Add(time.Duration(i) * 3 * time.Microsecond)
		if i%2 == 0 {
			root = sid
			sp.SetName("lets-go")
			sp.SetKind(ptrace.SpanKindClient)
			sp.Attributes().PutStr("net.peer.ip", "1.2.3.4")
			sp.Attributes().PutStr("peer.service", "telemetrygen-server")
		} else {
			sp.SetParentSpanID(root)
			sp.SetName("okey-dokey-0")
			sp.SetKind(ptrace.SpanKindServer)
			sp.Attributes().PutStr("net.peer.ip", "1.2.3.4")
			sp.Attributes().PutStr("peer.service", "telemetrygen-client")
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(ts.Add(123 * time.Microsecond)))
	}
	return td
}

// tgenPhase writes spans telemetrygen-shaped spans on one core, fsync per commit, into
// a store of its own, and prints throughput, CPU per span and bytes on disk per span.
func tgenPhase(spans int, profile string) error {
	dir, err := os.MkdirTemp("", "spoor-storebench-tgen")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := badgerstore.Open(dir, storeOptions)
	if err != nil {
		return err
	}
	written, wall, cpu, err := tgenWrite(st, spans, profile)
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	disk, err := diskusage.Of(dir)
	if err != nil {
		return err
	}
	fmt.Printf("  write, one core, telemetrygen-shaped spans (%d)  %9.0f spans/s   (%0.2f µs CPU per span = %0.0f spans/s per core; target ≥ 300,000/s)\n",
		written, float64(written)/wall.Seconds(), float64(cpu.Microseconds())/float64(written), float64(written)/cpu.Seconds())
	fmt.Printf("  bytes on disk per telemetrygen-shaped span        %9.1f         (target ≤ 100; Jaeger's Badger ≈ 290)\n",
		float64(disk)/float64(written))
	return nil
}

// tgenWrite writes spans telemetrygen-shaped spans into st on one core and returns what
// it wrote, the wall time and the process CPU time the writes took.
func tgenWrite(st *badgerstore.Store, spans int, profile string) (written int, wall, cpu time.Duration, err error) {
	const batch = 512
	start := time.Now().Add(-time.Hour)
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return 0, 0, 0, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, 0, 0, err
		}
		defer pprof.StopCPUProfile()
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	for written < spans {
		var batches []encodedBatch
		for i := 0; i < 64 && written+len(batches)*batch < spans; i++ {
			n := written + len(batches)*batch
			b, err := encode(tgenBatch(uint64(n/batch)+1, batch, start.Add(time.Duration(n)*3*time.Microsecond)))
			if err != nil {
				return written, wall, cpu, err
			}
			batches = append(batches, b)
		}
		c0, t0 := cpuTime(), time.Now()
		for _, b := range batches {
			if err := st.WriteTracesEncoded(context.Background(), b.td, b.raw); err != nil {
				return written, wall, cpu, fmt.Errorf("write: %w", err)
			}
			written += b.td.SpanCount()
		}
		if err := st.WaitIndex(); err != nil { // as in the main write phase
			return written, wall, cpu, fmt.Errorf("write: %w", err)
		}
		wall += time.Since(t0)
		cpu += cpuTime() - c0
	}
	return written, wall, cpu, nil
}
