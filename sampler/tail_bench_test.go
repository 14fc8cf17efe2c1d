package sampler

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/spoortrace/spoor/internal/otlpbody"
	"github.com/spoortrace/spoor/internal/otlpwire"
)

// benchTraces builds batches of 1,000 spans, 10 spans per trace, spans shaped like an
// instrumented HTTP service's (six attributes, a resource with four), with one trace in
// a hundred erring.
func benchTraces(rng *rand.Rand, batches int) []ptrace.Traces {
	out := make([]ptrace.Traces, batches)
	for b := range out {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", "checkout")
		ra.PutStr("service.version", "1.4.2")
		ra.PutStr("host.name", "checkout-7f9c6d-x2k4q")
		ra.PutStr("telemetry.sdk.language", "go")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		for t := 0; t < 100; t++ {
			tid := randTID(rng)
			isErr := rng.IntN(100) == 0
			for s := 0; s < 10; s++ {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(tid)
				sp.SetSpanID(randSID(rng))
				sp.SetName("GET /api/orders/{id}")
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + s*1000))
				sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_002_000_000 + s*1000))
				a := sp.Attributes()
				a.PutStr("http.request.method", "GET")
				a.PutStr("http.route", "/api/orders/{id}")
				a.PutInt("http.response.status_code", 200)
				a.PutStr("server.address", "checkout.internal")
				a.PutStr("url.path", fmt.Sprintf("/api/orders/%d", rng.IntN(1_000_000)))
				a.PutStr("network.protocol.version", "1.1")
				if isErr && s == 9 {
					sp.Status().SetCode(ptrace.StatusCodeError)
				}
			}
		}
		out[b] = td
	}
	return out
}

func benchTail(b *testing.B, pct float64) *headProcessor {
	cfg := tailCfg(pct)
	cfg.Tail.MaxTraces, cfg.Tail.MaxSpans = 1_000_000, 10_000_000
	p, err := newHeadProcessor(cfg, noop.NewMeterProvider())
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkTailThroughput is the processor with tail policies over 1,000-span batches
// at 10% head sampling: 90% of the spans are held (each trace's wait ends, in this
// benchmark, by a sweep after every 100 batches), 1% of the traces are kept by the error
// policy. spans/s is issue 4's tail throughput figure. The same 100 batches come again
// after each sweep, and their held spans are held afresh, since a trace whose wait
// ended is not remembered. (When the stage remembered those decisions, the later
// rounds' spans were dropped as late ones, which this benchmark read as 195 ns per
// span with request_bytes; that code with no decision remembered read 246-276 ns.)
//
// request_bytes: with tail.hold_request_bytes and each batch's request bytes in the
// context, as the OTLP/HTTP door passes them (held spans copied, not encoded).
func BenchmarkTailThroughput(b *testing.B) {
	b.Run("encoded", func(b *testing.B) { benchTailThroughput(b, false) })
	b.Run("request_bytes", func(b *testing.B) { benchTailThroughput(b, true) })
}

func benchTailThroughput(b *testing.B, hold bool) {
	rng := rand.New(rand.NewPCG(21, 21))
	pool := benchTraces(rng, 100)
	bodies := make([][]byte, len(pool))
	for i, td := range pool {
		bodies[i] = requestBytes(b, td)
	}
	var door benchDoor
	cfg := tailCfg(10)
	cfg.Tail.MaxTraces, cfg.Tail.MaxSpans = 1_000_000, 10_000_000
	cfg.Tail.HoldRequestBytes = hold
	p, err := newHeadProcessor(cfg, noop.NewMeterProvider())
	if err != nil {
		b.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	p.tail.now = clk.now
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		td := ptrace.NewTraces()
		pool[i%len(pool)].CopyTo(td) // the processor moves spans out: a fresh batch each time
		process := func(ctx context.Context) {
			b.StartTimer()
			if _, err := p.processTraces(ctx, td); err != nil && td.SpanCount() != 0 {
				b.Fatal(err)
			}
		}
		if hold {
			// Read just now, as a receiver's body is.
			door.call(context.Background(), bodies[i%len(pool)], nil, process)
		} else {
			process(context.Background())
		}
		if i%len(pool) == len(pool)-1 {
			clk.advance(time.Minute)
			p.tail.sweep(context.Background())
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/span")
}

// BenchmarkTailMemoryPerSpan is the heap the tail stage holds per buffered span (its
// share of the held batch's resource and scope copies, trace list and filter
// included), at 0% head sampling so every span is held: issue 4's target is under 1 KiB.
// encoded: held spans encoded from pdata; request_bytes: with tail.hold_request_bytes,
// each batch given with its request's bytes, which the stage keeps whole (every span
// of the request is held).
//
// one_span_requests: the same spans, each in a request of its own (20,000 of them), the
// worst case for what a held batch costs beside its spans.
func BenchmarkTailMemoryPerSpan(b *testing.B) {
	b.Run("encoded", func(b *testing.B) { benchTailMemoryPerSpan(b, false, false) })
	b.Run("request_bytes", func(b *testing.B) { benchTailMemoryPerSpan(b, true, false) })
	b.Run("encoded/one_span_requests", func(b *testing.B) { benchTailMemoryPerSpan(b, false, true) })
	b.Run("request_bytes/one_span_requests", func(b *testing.B) { benchTailMemoryPerSpan(b, true, true) })
}

// oneSpanRequests splits each batch of tds into requests of one span each, with its
// resource and scope.
func oneSpanRequests(tds []ptrace.Traces) []ptrace.Traces {
	var out []ptrace.Traces
	for _, td := range tds {
		rs := td.ResourceSpans().At(0)
		ss := rs.ScopeSpans().At(0)
		for k := 0; k < ss.Spans().Len(); k++ {
			one := ptrace.NewTraces()
			ors := one.ResourceSpans().AppendEmpty()
			rs.Resource().CopyTo(ors.Resource())
			oss := ors.ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(oss.Scope())
			ss.Spans().At(k).CopyTo(oss.Spans().AppendEmpty())
			out = append(out, one)
		}
	}
	return out
}

func benchTailMemoryPerSpan(b *testing.B, hold, oneSpan bool) {
	rng := rand.New(rand.NewPCG(22, 22))
	batches := 100 // 100,000 spans, 10,000 traces
	if oneSpan {
		batches = 20
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p := benchTail(b, 0)
		p.tail.holdBytes = hold
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		// Built after the first reading: what they do not leave in the stage is
		// garbage by the second.
		pool := benchTraces(rng, batches)
		if oneSpan {
			pool = oneSpanRequests(pool)
		}
		kept := 0
		b.StartTimer()
		for _, td := range pool {
			ctx := context.Background()
			if hold {
				ctx = otlpbody.NewContext(ctx, requestBytes(b, td), func() func() { kept++; return func() {} })
			}
			if _, err := p.processTraces(ctx, td); err != nil && td.SpanCount() != 0 {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if hold && !oneSpan && kept != len(pool) {
			// (A one-span request's span is too small a part of it to keep it whole:
			// the span is copied out.)
			b.Fatalf("%d requests kept whole, want all %d", kept, len(pool))
		}
		// The batches themselves are garbage now: only what the stage holds stays.
		pool = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := p.tail.heldSpans
		if held == 0 {
			b.Fatal("nothing held")
		}
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(held), "bytes/buffered-span")
		b.ReportMetric(float64(held), "held-spans")
		runtime.KeepAlive(p)
		b.StartTimer()
	}
}

// BenchmarkTailCPU is what the tail stage costs the process per span, the garbage
// collector included, as issue 4's target counts it: the processor at 10% head sampling
// over 1,000-span batches arriving at 20,000 spans/s of the test clock, with the default
// caps (25,000 traces, 100,000 spans) and 5 s decision wait, so that about 90,000
// head-dropped spans are held at steady state, as in spoor's default config. Each batch
// is a fresh copy (what a receiver's unmarshalling would hand over), in both cases.
// cpu-ns/span is process CPU time (user + system, every thread) per span; tail_off is
// the same pipeline without the tail stage, the baseline of the ratio; tail_on_request_bytes
// is tail_on with tail.hold_request_bytes, each batch's request bytes in its context
// (copied per batch from the pooled batch's encoding, with the batch's trace IDs, into a
// buffer the sampler may keep, as the door reads a body: benchDoor). A 128 MiB
// pointer-free ballast stands for the trace store's memtables and caches, which make
// most of spoor's heap: it sets how often the GC runs, and it is not scanned, so what the
// GC costs per cycle is the pointers the rest of the heap, held spans included, holds.
func BenchmarkTailCPU(b *testing.B) {
	rng := rand.New(rand.NewPCG(23, 23))
	pool := benchTraces(rng, 20)
	bodies := make([][]byte, len(pool))
	tidAt := make([][]int, len(pool)) // where each span's trace ID is in bodies
	for k, td := range pool {
		bodies[k] = requestBytes(b, td)
		tidAt[k] = traceIDOffsets(b, bodies[k])
	}
	var door benchDoor
	ballast := make([]byte, 128<<20)
	defer runtime.KeepAlive(ballast)
	for _, variant := range []string{"tail_off", "tail_on", "tail_on_request_bytes"} {
		tail, hold := variant != "tail_off", variant == "tail_on_request_bytes"
		b.Run(variant, func(b *testing.B) {
			cfg := tailCfg(10)
			cfg.Tail.Enabled = tail
			cfg.Tail.HoldRequestBytes = hold
			p, err := newHeadProcessor(cfg, noop.NewMeterProvider())
			if err != nil {
				b.Fatal(err)
			}
			clk := &clock{t: time.Unix(1_800_000_000, 0)}
			if p.tail != nil {
				p.tail.now = clk.now
			}
			step := func(i int) {
				td := ptrace.NewTraces()
				pool[i%len(pool)].CopyTo(td)
				uniqueTraceIDs(td, i)
				process := func(ctx context.Context) {
					if _, err := p.processTraces(ctx, td); err != nil && td.SpanCount() != 0 {
						b.Fatal(err)
					}
				}
				if hold {
					k := i % len(pool)
					door.call(context.Background(), bodies[k], func(body []byte) {
						for _, off := range tidAt[k] {
							binary.BigEndian.PutUint64(body[off:], uint64(i)) // as uniqueTraceIDs
						}
					}, process)
				} else {
					process(context.Background())
				}
				clk.advance(50 * time.Millisecond)
				if p.tail != nil && i%10 == 9 {
					p.tail.sweep(context.Background())
				}
			}
			// Fill the buffer to its steady state before measuring.
			for i := 0; i < 200; i++ {
				step(i)
			}
			runtime.GC()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step(i)
			}
			b.StopTimer()
			cpu := processCPU() - cpu0
			runtime.ReadMemStats(&ms1)
			spans := float64(b.N) * 1000
			b.ReportMetric(float64(cpu.Nanoseconds())/spans, "cpu-ns/span")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/spans, "alloc-B/span")
			b.ReportMetric(float64(ms1.NumGC-ms0.NumGC)/spans*1e6, "GCs/Mspan")
			held := 0
			if p.tail != nil {
				held = p.tail.heldSpans
			}
			b.ReportMetric(float64(held), "held-spans")
		})
	}
}

// uniqueTraceIDs gives the spans of the i-th copy of a pooled batch trace IDs no other
// copy has, by writing i into the high bytes, which leaves R (the low 56 bits), and so
// the head decision, as it was.
func uniqueTraceIDs(td ptrace.Traces, i int) {
	rss := td.ResourceSpans()
	for a := 0; a < rss.Len(); a++ {
		sss := rss.At(a).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				tid := sp.TraceID()
				binary.BigEndian.PutUint64(tid[:8], uint64(i))
				sp.SetTraceID(tid)
			}
		}
	}
}

// traceIDOffsets returns where in an encoded request each span's trace ID is.
func traceIDOffsets(tb testing.TB, body []byte) []int {
	tb.Helper()
	var offs []int
	var walk func(msg []byte, base, depth int)
	walk = func(msg []byte, base, depth int) {
		for pos := 0; pos < len(msg); {
			num, typ, v, n := otlpwire.ConsumeField(msg[pos:])
			if n < 0 {
				tb.Fatal("malformed request")
			}
			at := base + pos + n - len(v) // where v starts in body
			switch {
			case depth == 3 && num == otlpwire.FieldSpanTraceID:
				offs = append(offs, at)
			case depth < 3 && typ == protowire.BytesType && (depth == 0 && num == 1 || depth > 0 && num == 2):
				walk(v, at, depth+1)
			}
			pos += n
		}
	}
	walk(body, 0, 0)
	return offs
}

// benchDoor hands requests' bytes to the processor as the door does: each read into a
// buffer of a pool, which the sampler may keep (otlpbody.Retain) and give back later;
// a buffer not kept goes back once the call returns.
type benchDoor struct{ free [][]byte }

// call reads src into a buffer, changes it with patch (if not nil), and calls f with
// ctx carrying it.
func (d *benchDoor) call(ctx context.Context, src []byte, patch func([]byte), f func(context.Context)) {
	var body []byte
	if n := len(d.free); n > 0 {
		body, d.free = d.free[n-1][:0], d.free[:n-1]
	}
	body = append(body, src...)
	if patch != nil {
		patch(body)
	}
	kept := false
	f(otlpbody.NewContext(ctx, body, func() func() {
		kept = true
		return func() { d.free = append(d.free, body) }
	}))
	if !kept {
		d.free = append(d.free, body)
	}
}

// BenchmarkTailErrorsAcrossBatches is the tail stage where its keeps cost most: at 10%
// head sampling with tail.hold_request_bytes, every trace's ten spans come in two
// consecutive 1,000-span batches (five in each) and 10% of the traces err in their
// second half, so that every such keep finds the trace's first half held in the
// batch before and cuts it out (of batches held for the default decision_wait's
// worth: max_spans 100,000). Trace IDs are fresh in every batch.
func BenchmarkTailErrorsAcrossBatches(b *testing.B) {
	rng := rand.New(rand.NewPCG(23, 23))
	var door benchDoor
	cfg := tailCfg(10)
	cfg.Tail.HoldRequestBytes = true
	p, err := newHeadProcessor(cfg, noop.NewMeterProvider())
	if err != nil {
		b.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	p.tail.now = clk.now
	batch := func(prev, next []pcommon.TraceID) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "checkout")
		ss := rs.ScopeSpans().AppendEmpty()
		for half, tids := range [][]pcommon.TraceID{prev, next} {
			for t, tid := range tids {
				for s := range 5 {
					sp := ss.Spans().AppendEmpty()
					sp.SetTraceID(tid)
					sp.SetSpanID(randSID(rng))
					sp.SetName("GET /api/orders/{id}")
					sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + s*1000))
					sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_002_000_000 + s*1000))
					sp.Attributes().PutStr("http.route", "/api/orders/{id}")
					if half == 0 && t%10 == 0 && s == 4 {
						sp.Status().SetCode(ptrace.StatusCodeError)
					}
				}
			}
		}
		return td
	}
	newTIDs := func() []pcommon.TraceID {
		tids := make([]pcommon.TraceID, 100)
		for i := range tids {
			tids[i] = randTID(rng)
		}
		return tids
	}
	prev := newTIDs()
	var released int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		next := newTIDs()
		td := batch(prev, next)
		body := requestBytes(b, td)
		prev = next
		door.call(context.Background(), body, nil, func(ctx context.Context) {
			b.StartTimer()
			out, err := p.processTraces(ctx, td)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			released += out.SpanCount()
		})
		clk.advance(50 * time.Millisecond) // 100 batches in a decision wait
		if i%10 == 9 {
			p.tail.sweep(context.Background())
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/span")
	b.ReportMetric(float64(released)/float64(b.N)/1000, "passed/span")
}
