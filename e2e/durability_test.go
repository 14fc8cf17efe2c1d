package e2e

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestKillDuringLoad drives sustained load over OTLP gRPC from several senders, kills
// Spoor with SIGKILL mid-stream, restarts it on the same data directory, and checks that
// every trace whose export the sender saw succeed is stored, whole. Exports that failed
// or were cut off may be missing; none that succeeded may be.
func TestKillDuringLoad(t *testing.T) {
	dataDir := t.TempDir()
	s := startSpoor(t, dataDir)

	conn, err := grpc.NewClient(s.ep.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	const senders, tracesPerBatch, spansPerTrace = 4, 50, 4
	var (
		mu      sync.Mutex
		acked   []pcommon.TraceID
		batches atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for {
				select {
				case <-stop:
					return
				default:
				}
				td, ids := loadBatch(rng, tracesPerBatch, spansPerTrace)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
				cancel()
				if err != nil {
					// Refused or cut off by the kill: the sender knows these were not stored.
					select {
					case <-stop:
						return
					default:
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				batches.Add(1)
				mu.Lock()
				acked = append(acked, ids...)
				mu.Unlock()
			}
		}(w)
	}

	// Let the load run until a good number of batches are acknowledged, then crash.
	started := time.Now()
	deadline := started.Add(30 * time.Second)
	for (batches.Load() < 40 || time.Since(started) < 2*time.Second) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	close(stop)
	wg.Wait()
	mu.Lock()
	ackedIDs := append([]pcommon.TraceID(nil), acked...)
	mu.Unlock()
	if len(ackedIDs) < 40*tracesPerBatch {
		t.Fatalf("only %d traces acknowledged before the kill; the load did not run", len(ackedIDs))
	}

	s2 := startSpoor(t, dataDir)
	client2 := &http.Client{Timeout: 10 * time.Second}
	missing, partial := 0, 0
	for _, id := range ackedIDs {
		var env jaegerEnvelope[[]jaegerTrace]
		code := getJSONWith(t, client2, "http://"+s2.ep.Query+"/api/traces/"+id.String(), &env)
		switch {
		case code == http.StatusNotFound:
			missing++
		case code != http.StatusOK || len(env.Data) != 1:
			t.Fatalf("GET trace %s: status %d", id, code)
		case len(env.Data[0].Spans) != spansPerTrace:
			partial++
		}
	}
	t.Logf("%d traces acknowledged before SIGKILL; %d missing, %d partial after restart", len(ackedIDs), missing, partial)
	if missing > 0 || partial > 0 {
		t.Errorf("acknowledged traces lost after SIGKILL: %d missing, %d partial, of %d", missing, partial, len(ackedIDs))
	}
}

// loadBatch builds n traces of m spans each, with random trace IDs.
func loadBatch(rng *rand.Rand, n, m int) (ptrace.Traces, []pcommon.TraceID) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "durability")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	ids := make([]pcommon.TraceID, 0, n)
	now := time.Now()
	for i := 0; i < n; i++ {
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], rng.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rng.Uint64()|1)
		ids = append(ids, tid)
		var parent pcommon.SpanID
		for j := 0; j < m; j++ {
			sp := spans.AppendEmpty()
			sp.SetTraceID(tid)
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], rng.Uint64()|1)
			sp.SetSpanID(sid)
			sp.SetParentSpanID(parent)
			if j == 0 {
				parent = sid
			}
			sp.SetName("op")
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(j) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(j+2) * time.Millisecond)))
			sp.Attributes().PutInt("i", int64(j))
		}
	}
	return td, ids
}
