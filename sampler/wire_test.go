package sampler

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/spoortrace/spoor/internal/otlpbody"
	"github.com/spoortrace/spoor/internal/otlpwire"
)

// wireBatches is a workload for the request-bytes path: batches of two services, the
// second with two scopes, schema URLs on resources and scopes, traces spread over three
// consecutive batches, tracestates with and without th (and another vendor's entry),
// one trace in eight erring in its last batch, and some late spans of traces already
// decided.
func wireBatches(rng *rand.Rand, n int) []ptrace.Traces {
	type tr struct {
		tid   pcommon.TraceID
		ts    string
		errAt int
	}
	var live []tr
	var old []pcommon.TraceID
	out := make([]ptrace.Traces, n)
	for b := range out {
		// Each batch starts 20 traces, which end two batches later.
		for range 20 {
			t := tr{tid: randTID(rng), errAt: -1}
			switch rng.IntN(3) {
			case 1:
				t.ts = "ot=th:8;rv=" + fmt.Sprintf("%014x", rng.Uint64()>>8) + ",vendor=v"
			case 2:
				t.ts = "vendor=w"
			}
			if rng.IntN(8) == 0 {
				t.errAt = b + 2
			}
			live = append(live, t)
		}
		td := ptrace.NewTraces()
		var scopes []ptrace.SpanSlice
		for r := range 2 {
			rs := td.ResourceSpans().AppendEmpty()
			rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
			rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
			for s := range r + 1 {
				ss := rs.ScopeSpans().AppendEmpty()
				ss.Scope().SetName(fmt.Sprintf("lib-%d", s))
				ss.SetSchemaUrl("https://example.com/scope")
				scopes = append(scopes, ss.Spans())
			}
		}
		next := live[:0]
		prioSet := false
		for _, t := range live {
			for range 1 + rng.IntN(3) {
				sp := scopes[rng.IntN(len(scopes))].AppendEmpty()
				sp.SetTraceID(t.tid)
				sp.SetSpanID(randSID(rng))
				sp.SetName("op")
				sp.TraceState().FromRaw(t.ts)
				sp.SetStartTimestamp(pcommon.Timestamp(1_800_000_000_000_000_000 + rng.IntN(1000)))
				sp.SetEndTimestamp(pcommon.Timestamp(1_800_000_000_001_000_000 + rng.IntN(1000)))
				sp.Attributes().PutInt("n", int64(rng.IntN(100)))
				switch {
				case b%5 == 2 && !prioSet:
					// The request-bytes path reads priorities only when the key is
					// in the request: the key, on one span of some batches...
					sp.Attributes().PutInt("sampling.priority", int64(b/5%2))
					prioSet = true
				case b%5 == 4 && !prioSet:
					// ...and in a value only, in others.
					sp.Attributes().PutStr("note", "no sampling.priority here")
					prioSet = true
				}
				if t.errAt == b {
					sp.Status().SetCode(ptrace.StatusCodeError)
				}
			}
			if t.errAt == b || rng.IntN(3) == 0 {
				old = append(old, t.tid)
				continue
			}
			next = append(next, t)
		}
		live = next
		for range 3 {
			if len(old) > 0 {
				sp := scopes[0].AppendEmpty()
				sp.SetTraceID(old[rng.IntN(len(old))])
				sp.SetSpanID(randSID(rng))
				sp.SetName("late")
			}
		}
		out[b] = td
	}
	return out
}

func requestBytes(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonOf(t testing.TB, td ptrace.Traces) string {
	t.Helper()
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runWith is run with ctx.
func runWith(t testing.TB, p *headProcessor, ctx context.Context, td ptrace.Traces) ptrace.Traces {
	t.Helper()
	out, err := p.processTraces(ctx, td)
	if err != nil && out.SpanCount() != 0 {
		t.Fatalf("process: %v", err)
	}
	if err != nil {
		return ptrace.NewTraces()
	}
	return out
}

// compareWithEncoded runs the same batches through a processor that holds spans as
// pdata (then sealed) and one given the request bytes by body (which may change them),
// with hold_request_bytes set to hold, and checks that every batch comes out of both
// the same, byte for byte in JSON: released traces with their resources, scopes, span
// fields, and th erased. The door lets the sampler keep each request's bytes
// (otlpbody.Retain) and overwrites them once they are given back, so that a held batch
// read after its release would come out wrong. It returns the second processor's
// held_batches counts, and under "retained" and "released" how many requests the
// sampler kept and gave back (every one, once its processor shut down).
func compareWithEncoded(t *testing.T, pct float64, hold bool, body func(i int, td ptrace.Traces) []byte) map[string]int64 {
	t.Helper()
	cfg := tailCfg(pct)
	ref, refClk := newTail(t, cfg, nil)
	cfg2 := tailCfg(pct)
	cfg2.Tail.HoldRequestBytes = hold
	reader := sdkmetric.NewManualReader()
	p, clk := newTail(t, cfg2, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	batches := wireBatches(rand.New(rand.NewPCG(41, 41)), 60)
	released := 0
	var retains, releases int64
	for i, td := range batches {
		// body may change the batch after taking its bytes, as a processor would: the
		// reference processor gets the changed batch.
		data := body(i, td)
		ctx := otlpbody.NewContext(context.Background(), data, func() func() {
			retains++
			return func() {
				releases++
				for j := range data {
					data[j] = 0xff
				}
			}
		})
		td2 := ptrace.NewTraces()
		td.CopyTo(td2)
		want := jsonOf(t, run(t, ref, td2))
		got := runWith(t, p, ctx, td)
		if g := jsonOf(t, got); g != want {
			n := 0
			for n < min(len(g), len(want)) && g[n] == want[n] {
				n++
			}
			t.Fatalf("batch %d differs from the encoded path's at byte %d:\n got …%.300s\nwant …%.300s", i, n, g[max(0, n-100):], want[max(0, n-100):])
		}
		released += got.SpanCount()
		refClk.advance(time.Second)
		clk.advance(time.Second)
		if i%4 == 3 {
			ref.tail.sweep(context.Background())
			p.tail.sweep(context.Background())
		}
	}
	if ref.tail.retained != p.tail.retained || ref.tail.heldTraces != p.tail.heldTraces {
		t.Fatalf("retained %d/%d, held traces %d/%d: want the same", p.tail.retained, ref.tail.retained, p.tail.heldTraces, ref.tail.heldTraces)
	}
	m := collect(t, reader)
	if m["spoor_sampler_tail_traces policy=error"] == 0 || m["spoor_sampler_tail_spans policy=error sampled=true"] == 0 {
		t.Fatalf("no held trace kept by the error policy: %v", m)
	}
	if err := p.tail.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if releases != retains {
		t.Fatalf("%d requests kept, %d given back after shutdown", retains, releases)
	}
	m["retained"], m["released"] = retains, releases
	return m
}

// Spans held as their request's bytes come out, when a policy keeps their trace,
// exactly as spans held as pdata do.
func TestTailRequestBytesHeldAsReceived(t *testing.T) {
	// pdata writes a message's fields last to first, Go's protobuf (the SDKs' exporters)
	// first to last.
	encoders := map[string]func(testing.TB, ptrace.Traces) []byte{"pdata": requestBytes, "protobuf-go": requestBytesGo,
		"IDs amid other fields": requestBytesRotated}
	for name, enc := range encoders {
		for _, pct := range []float64{1, 10, 80} {
			t.Run(fmt.Sprintf("%s/%v%%", name, pct), func(t *testing.T) {
				m := compareWithEncoded(t, pct, true, func(_ int, td ptrace.Traces) []byte { return enc(t, td) })
				if m["spoor_sampler_tail_held_batches held_as=request_bytes"] == 0 || m["spoor_sampler_tail_held_batches held_as=encoded"] != 0 {
					t.Fatalf("held batches: %v, want all copied from the request bytes", m)
				}
				// At low head rates the held spans are most of the request, kept
				// whole; at 80% they are copied out.
				if kept := m["retained"] > 0; kept != (pct < 50) {
					t.Fatalf("%d requests kept whole at %v%%", m["retained"], pct)
				}
			})
		}
	}
}

// requestBytesRotated is requestBytesGo with each span's first two fields (its IDs)
// moved behind the others: neither where Go's protobuf nor where pdata puts them.
func requestBytesRotated(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	var rebuild func(msg []byte, depth int) []byte
	rebuild = func(msg []byte, depth int) []byte {
		var fields [][]byte
		for len(msg) > 0 {
			num, typ, v, n := otlpwire.ConsumeField(msg)
			if n < 0 {
				t.Fatal("malformed")
			}
			f := msg[:n]
			if depth < 3 && typ == protowire.BytesType && (depth == 0 && num == 1 || depth > 0 && num == 2) {
				f = protowire.AppendBytes(protowire.AppendTag(nil, num, typ), rebuild(v, depth+1))
			}
			fields = append(fields, f)
			msg = msg[n:]
		}
		if depth == 3 && len(fields) > 2 {
			fields = append(fields[2:], fields[:2]...)
		}
		return bytes.Join(fields, nil)
	}
	return rebuild(requestBytesGo(t, td), 0)
}

// requestBytesGo is td's request as Go's protobuf encodes it, fields in number order.
func requestBytesGo(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(requestBytes(t, td), &req); err != nil {
		t.Fatal(err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A batch that no longer matches its request's bytes — a processor before the sampler
// removed, reordered or renamed spans, or the bytes are another request's — is held
// encoded, and comes out right; so is every batch when hold_request_bytes is off.
func TestTailRequestBytesFallback(t *testing.T) {
	other := requestBytes(t, wireBatches(rand.New(rand.NewPCG(1, 2)), 1)[0])
	cases := []struct {
		name string
		hold bool
		body func(i int, td ptrace.Traces) []byte
	}{
		{"option off", false, func(_ int, td ptrace.Traces) []byte { return requestBytes(t, td) }},
		{"no bytes", true, func(int, ptrace.Traces) []byte { return nil }},
		{"another request", true, func(int, ptrace.Traces) []byte { return other }},
		{"span removed after decoding", true, func(_ int, td ptrace.Traces) []byte {
			b := requestBytes(t, td)
			td.ResourceSpans().At(1).ScopeSpans().At(1).Spans().RemoveIf(func(sp ptrace.Span) bool { return sp.SpanID()[7]%2 == 0 })
			return b
		}},
		{"span ID changed after decoding", true, func(_ int, td ptrace.Traces) []byte {
			b := requestBytes(t, td)
			spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			spans.At(spans.Len() - 1).SetSpanID(sid(1))
			return b
		}},
		{"resources reordered", true, func(_ int, td ptrace.Traces) []byte {
			b := requestBytes(t, td)
			rss := td.ResourceSpans()
			first := ptrace.NewResourceSpans()
			rss.At(0).MoveTo(first)
			rss.RemoveIf(func(rs ptrace.ResourceSpans) bool { return rs.ScopeSpans().Len() == 0 })
			first.MoveTo(rss.AppendEmpty())
			return b
		}},
		{"truncated", true, func(_ int, td ptrace.Traces) []byte { b := requestBytes(t, td); return b[:len(b)-3] }},
		{"deprecated scope spans field", true, func(_ int, td ptrace.Traces) []byte {
			return append(requestBytes(t, td), 0x0a, 0x04, 0xc2, 0x3e, 0x01, 0x00) // resource_spans{1000: ""}, an extra resource
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := compareWithEncoded(t, 10, c.hold, c.body)
			if m["spoor_sampler_tail_held_batches held_as=request_bytes"] != 0 || m["spoor_sampler_tail_held_batches held_as=encoded"] == 0 {
				t.Fatalf("held batches: %v, want all encoded", m)
			}
		})
	}
}

// indexWire takes any bytes without panicking, and accepts only a request that holds the
// batch's spans.
func FuzzIndexWire(f *testing.F) {
	td := wireBatches(rand.New(rand.NewPCG(5, 5)), 1)[0]
	good := requestBytes(f, td)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	p, _ := newTail(f, tailCfg(10), nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		b := &tailBatch{t: p.tail}
		if !b.indexWire(body, td) {
			return
		}
		if len(b.wspans) != td.SpanCount() {
			t.Fatalf("accepted with %d spans for %d", len(b.wspans), td.SpanCount())
		}
		got, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
		if err == nil && got.SpanCount() != td.SpanCount() {
			t.Fatalf("accepted a request of %d spans for %d", got.SpanCount(), td.SpanCount())
		}
	})
}

// indexWire finds every span whatever the size of its length: one byte (a bare span),
// two (read inline), three (a span over 16 KiB, read through ConsumeField), with the
// spans' bytes exactly those of the request.
func TestIndexWireSpanLengths(t *testing.T) {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i, size := range []int{0, 100, 1000, 20_000, 10, 16_300, 16_400} {
		sp := spans.AppendEmpty()
		sp.SetTraceID(randTID(rand.New(rand.NewPCG(uint64(i), 1))))
		sp.SetSpanID(sid(byte(i + 1)))
		if size > 0 {
			sp.Attributes().PutStr("pad", strings.Repeat("x", size))
		}
	}
	body := requestBytes(t, td)
	p, _ := newTail(t, tailCfg(10), nil)
	b := &tailBatch{t: p.tail}
	if !b.indexWire(body, td) {
		t.Fatal("indexWire refused the batch's own request")
	}
	if len(b.wspans) != spans.Len() {
		t.Fatalf("%d spans found, want %d", len(b.wspans), spans.Len())
	}
	for i, field := range b.wspans {
		num, _, content, n := otlpwire.ConsumeField(field)
		if n != len(field) || num != otlpwire.FieldScopeSpansSpans || !bytes.Contains(body, field) {
			t.Fatalf("span %d: %d bytes are not one spans field of the request", i, len(field))
		}
		pad, _ := spans.At(i).Attributes().Get("pad")
		if !sameIDs(content, spans.At(i)) || !bytes.Contains(content, []byte(pad.Str())) {
			t.Fatalf("span %d: the field found holds another span", i)
		}
	}
}
