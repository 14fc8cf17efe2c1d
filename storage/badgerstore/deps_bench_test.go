//go:build unix

package badgerstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// depBenchBatches are batches of 512 spans as observe sees them: traces of a gateway
// calling one to three of five services (client → server), each of which calls an
// uninstrumented peer, 5% errors; childrenFirst reverses each trace, as SDKs export
// spans when they end. keys holds each batch's span and parent keys before salting.
func depBenchBatches(n int, childrenFirst bool) (batches []*writeScratch, keys [][][2]uint64) {
	rng := rand.New(rand.NewPCG(7, 8))
	services := []string{"gateway", "orders", "payments", "fraud", "ledger", "notify"}
	type one struct {
		span ptrace.Span
		tid  pcommon.TraceID
		res  int32
	}
	spans := ptrace.NewSpanSlice()
	var all []one
	for len(all) < n*512 {
		var tid pcommon.TraceID
		for i := range tid {
			tid[i] = byte(rng.Uint32())
		}
		var trace []one
		add := func(res int32, kind ptrace.SpanKind, parent pcommon.SpanID, peer string) pcommon.SpanID {
			sp := spans.AppendEmpty()
			var id pcommon.SpanID
			for i := range id {
				id[i] = byte(rng.Uint32())
			}
			sp.SetSpanID(id)
			sp.SetParentSpanID(parent)
			sp.SetKind(kind)
			if peer != "" {
				sp.Attributes().PutStr("peer.service", peer)
			}
			if rng.IntN(20) == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
			trace = append(trace, one{span: sp, tid: tid, res: res})
			return id
		}
		root := add(0, ptrace.SpanKindServer, pcommon.SpanID{}, "")
		for range 1 + rng.IntN(3) {
			callee := int32(1 + rng.IntN(5))
			c := add(0, ptrace.SpanKindClient, root, "")
			s := add(callee, ptrace.SpanKindServer, c, "")
			add(callee, ptrace.SpanKindClient, s, "postgres")
		}
		if childrenFirst {
			slices.Reverse(trace)
		}
		all = append(all, trace...)
	}
	for i := range n {
		w := &writeScratch{resService: services}
		var k [][2]uint64
		for _, o := range all[i*512 : (i+1)*512] {
			w.addDepRec(o.span, o.tid, o.res, 480000)
			r := w.deps[len(w.deps)-1]
			k = append(k, [2]uint64{r.key, r.parent})
		}
		batches, keys = append(batches, w), append(keys, k)
	}
	return batches, keys
}

// BenchmarkDependencyObserve is the store's dependency matcher alone (no Badger): 64
// batches of 512 spans observed over and over, their span keys salted on each round so
// that every round is new spans. The clock moves 2ms a batch: the generations turn
// over by time every 7,500 batches and by capacity (1<<18 spans) every 512.
func BenchmarkDependencyObserve(b *testing.B) {
	for _, childrenFirst := range []bool{false, true} {
		b.Run(fmt.Sprintf("childrenFirst=%v", childrenFirst), func(b *testing.B) {
			batches, keys := depBenchBatches(64, childrenFirst)
			var d depTracker
			d.init(&Options{DependencyWait: defaultDependencyWait, DependencySpans: defaultDependencySpans,
				DependencyPending: defaultDependencyPending})
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			var ru0, ru1 syscall.Rusage // CPU time: a shared machine inflates it much less than wall time
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru0); err != nil {
				b.Fatal(err)
			}
			spans := 0
			for i := 0; i < b.N; i++ {
				w, k := batches[i%len(batches)], keys[i%len(batches)]
				salt := uint64(i/len(batches)) * 0x9e3779b97f4a7c15
				for j := range w.deps {
					w.deps[j].key = k[j][0] ^ salt
					if p := k[j][1]; p != 0 {
						w.deps[j].parent = p ^ salt
					}
				}
				d.observe(w, now.Add(time.Duration(i)*2*time.Millisecond))
				spans += len(w.deps)
			}
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru1); err != nil {
				b.Fatal(err)
			}
			cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
			b.ReportMetric(float64(cpu)/float64(spans), "cpu-ns/span")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
			if d.matched.Load() == 0 {
				b.Fatal("nothing matched")
			}
		})
	}
}
