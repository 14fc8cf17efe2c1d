// Package benchdata generates the spans the store and query benchmarks fill their
// stores with: traces of a root and four children across many services, 10 attributes
// per span (one, user.id, of high cardinality), 2% of spans failing, spread evenly over
// the last two hours.
package benchdata

import (
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	// BatchSpans is the spans of one batch, as an SDK's batch exporter sends them.
	BatchSpans = 512
	// SpansPerTrace is a root and four children.
	SpansPerTrace = 5
	// Window is how far back spans start: several hour buckets.
	Window = 2 * time.Hour
)

var (
	Methods = []string{"GET", "POST", "PUT", "DELETE"}
	// Tiers are the values of customer.tier: a search for one matches 1 span in 3.
	Tiers = []string{"free", "pro", "enterprise"}
)

// Workload makes the batches of a store of Spans spans.
type Workload struct {
	Services []string
	Ops      [][]string // per service
	// Sample is a reservoir of up to 100,000 written trace IDs, for lookups.
	Sample []pcommon.TraceID

	spans   int
	scope   string
	rng     *rand.Rand
	start   time.Time
	written int
}

// New returns the workload of spans spans across services services with
// opsPerService operations each; scope names the instrumentation scope.
func New(spans, services, opsPerService int, scope string) *Workload {
	w := &Workload{spans: spans, scope: scope, rng: rand.New(rand.NewPCG(1, 2)), start: time.Now().Add(-Window)}
	for s := 0; s < services; s++ {
		w.Services = append(w.Services, fmt.Sprintf("service-%02d", s))
		var ops []string
		for p := 0; p < opsPerService; p++ {
			ops = append(ops, fmt.Sprintf("op-%02d-%02d", s, p))
		}
		w.Ops = append(w.Ops, ops)
	}
	return w
}

// Batch returns the next batch; its spans start at a time that advances with the
// number of spans written, so the store fills the window evenly.
func (w *Workload) Batch() ptrace.Traces {
	td := ptrace.NewTraces()
	at := w.start.Add(time.Duration(float64(Window) * float64(w.written) / float64(w.spans)))
	// One resource per service in the batch, as an SDK per service would send.
	res := map[int]ptrace.SpanSlice{}
	spansOf := func(s int) ptrace.SpanSlice {
		if sl, ok := res[s]; ok {
			return sl
		}
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", w.Services[s])
		rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", s%7))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(w.scope)
		res[s] = ss.Spans()
		return res[s]
	}
	for n := 0; n < BatchSpans; n += SpansPerTrace {
		var tid pcommon.TraceID
		putRandom(w.rng, tid[:])
		if len(w.Sample) < 100_000 {
			w.Sample = append(w.Sample, tid)
		} else if i := w.rng.IntN(w.written/SpansPerTrace + 1); i < len(w.Sample) {
			w.Sample[i] = tid
		}
		rootSvc := w.rng.IntN(len(w.Services))
		traceDur := time.Duration(1+w.rng.ExpFloat64()*20) * time.Millisecond
		t0 := at.Add(time.Duration(w.rng.IntN(1000)) * time.Microsecond)
		var root pcommon.SpanID
		for i := 0; i < SpansPerTrace; i++ {
			svc := (rootSvc + i*7) % len(w.Services)
			sp := spansOf(svc).AppendEmpty()
			var sid pcommon.SpanID
			putRandom(w.rng, sid[:])
			sp.SetTraceID(tid)
			sp.SetSpanID(sid)
			if i == 0 {
				root = sid
				sp.SetKind(ptrace.SpanKindServer)
			} else {
				sp.SetParentSpanID(root)
				sp.SetKind(ptrace.SpanKindClient)
			}
			sp.SetName(w.Ops[svc][w.rng.IntN(len(w.Ops[svc]))])
			start := t0.Add(time.Duration(i) * traceDur / 10)
			dur := traceDur - time.Duration(i)*traceDur/10
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(dur)))
			a := sp.Attributes()
			a.PutStr("http.request.method", Methods[w.rng.IntN(len(Methods))])
			a.PutInt("http.response.status_code", int64([]int{200, 200, 200, 201, 404, 500}[w.rng.IntN(6)]))
			a.PutStr("customer.tier", Tiers[w.rng.IntN(len(Tiers))])
			a.PutStr("user.id", fmt.Sprintf("user-%d", w.rng.IntN(10_000)))
			for k := 0; k < 6; k++ {
				a.PutStr(fmt.Sprintf("attr%d", k), fmt.Sprintf("value-%d", k))
			}
			if w.rng.IntN(50) == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
	}
	w.written += td.SpanCount()
	return td
}

func putRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[len(b)-1] |= 1
}
