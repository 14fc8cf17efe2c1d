package analytics

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/spanmatch"
)

// graphBatch is one batch as observe sees it.
type graphBatch struct {
	recs     []rec
	services []string
	keys     [][2]uint64 // the recs' key and parent, before salting
}

// graphBenchBatches are batches of 512 spans of genTrace traces, grouped by service
// as SDKs send them; childrenFirst reverses each trace, as SDKs export spans when
// they end.
func graphBenchBatches(n int, childrenFirst bool) []graphBatch {
	rng := rand.New(rand.NewPCG(42, 43))
	var pool []spanSpec
	for len(pool) < n*512 {
		t := genTrace(rng, time.Now(), "")
		if childrenFirst {
			slices.Reverse(t)
		}
		pool = append(pool, t...)
	}
	out := make([]graphBatch, n)
	for i := range out {
		td := batchByService(pool[i*512 : (i+1)*512])
		gb := &out[i]
		for j := 0; j < td.ResourceSpans().Len(); j++ {
			rs := td.ResourceSpans().At(j)
			gb.services = append(gb.services, serviceName(rs.Resource().Attributes()))
			spans := rs.ScopeSpans().At(0).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				r := rec{res: int32(j), kind: uint8(sp.Kind()), err: sp.Status().Code() == ptrace.StatusCodeError,
					minute: uint32(uint64(sp.StartTimestamp()) / 60e9), adj: 1, dur: int64(sp.EndTimestamp() - sp.StartTimestamp()),
					key: spanmatch.Key(sp.TraceID(), sp.SpanID())}
				if ps := sp.ParentSpanID(); !ps.IsEmpty() {
					r.parent = spanmatch.Key(sp.TraceID(), ps)
				}
				if isCaller(r.kind) {
					r.peer = peerName(sp.Attributes())
				}
				gb.recs = append(gb.recs, r)
				gb.keys = append(gb.keys, [2]uint64{r.key, r.parent})
			}
		}
	}
	return out
}

// BenchmarkGraphObserve is the service graph's matcher alone: 64 batches of 512
// spans observed over and over, their span keys salted on each round so that every
// round is new spans. The clock moves 2ms a batch: the generations turn over by time
// every 5,000 batches and by capacity (1<<18 spans) every 512.
func BenchmarkGraphObserve(b *testing.B) {
	for _, childrenFirst := range []bool{false, true} {
		b.Run(fmt.Sprintf("childrenFirst=%v", childrenFirst), func(b *testing.B) {
			batches := graphBenchBatches(64, childrenFirst)
			now := time.Now()
			g := newGraph(10*time.Second, 1<<18, now)
			ids := make([][]uint32, len(batches))
			for i, gb := range batches {
				for _, s := range gb.services {
					ids[i] = append(ids[i], g.intern(s))
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			spans := 0
			for i := 0; i < b.N; i++ {
				gb := &batches[i%len(batches)]
				salt := uint64(i/len(batches)) * 0x9e3779b97f4a7c15
				for j := range gb.recs {
					gb.recs[j].key = gb.keys[j][0] ^ salt
					if p := gb.keys[j][1]; p != 0 {
						gb.recs[j].parent = p ^ salt
					}
				}
				g.observe(gb.recs, ids[i%len(batches)], now.Add(time.Duration(i)*2*time.Millisecond))
				spans += len(gb.recs)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(spans), "cpu-ns/span")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
		})
	}
}
