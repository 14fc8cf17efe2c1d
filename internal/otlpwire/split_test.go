package otlpwire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/spoortrace/spoor/internal/benchdata"
)

// splitBatch is a batch of several resources and scopes (with attributes and schema
// URLs), spans of many traces interleaved across them, some with events and links.
func splitBatch(rng *rand.Rand, traces int) ptrace.Traces {
	ids := make([]pcommon.TraceID, traces)
	for i := range ids {
		binary.LittleEndian.PutUint64(ids[i][8:], rng.Uint64())
		if i%3 != 0 { // a third with a zero high half, as 64-bit IDs have
			binary.LittleEndian.PutUint64(ids[i][:8], rng.Uint64())
		}
	}
	td := ptrace.NewTraces()
	for r := range 1 + rng.IntN(4) {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
		rs.Resource().Attributes().PutInt("r", int64(r))
		if r%2 == 0 {
			rs.SetSchemaUrl(fmt.Sprintf("https://example.com/r%d", r))
		}
		for s := range 1 + rng.IntN(3) {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("lib-%d", s))
			ss.Scope().SetVersion("1.2")
			ss.Scope().Attributes().PutStr("scope.attr", fmt.Sprintf("%d/%d", r, s))
			if s%2 == 1 {
				ss.SetSchemaUrl("https://example.com/s")
			}
			for k := range rng.IntN(40) {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(ids[rng.IntN(len(ids))])
				var sid pcommon.SpanID
				binary.LittleEndian.PutUint64(sid[:], rng.Uint64())
				sp.SetSpanID(sid)
				sp.SetName(fmt.Sprintf("op-%d", k))
				sp.SetStartTimestamp(pcommon.Timestamp(rng.Uint64N(1 << 60)))
				sp.Attributes().PutInt("n", int64(rng.IntN(100)))
				if rng.IntN(4) == 0 {
					sp.Events().AppendEmpty().SetName("ev")
					l := sp.Links().AppendEmpty()
					l.SetTraceID(ids[rng.IntN(len(ids))])
					l.SetSpanID(sid)
				}
			}
		}
	}
	return td
}

// spanKeys lists td's spans, each as the encoding of a batch holding only it, with its
// resource and scope.
func spanKeys(t *testing.T, td ptrace.Traces) []string {
	t.Helper()
	var keys []string
	var m ptrace.ProtoMarshaler
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				one := ptrace.NewTraces()
				ors := one.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(ors.Resource())
				ors.SetSchemaUrl(rs.SchemaUrl())
				oss := ors.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(oss.Scope())
				oss.SetSchemaUrl(ss.SchemaUrl())
				sp.CopyTo(oss.Spans().AppendEmpty())
				b, err := m.MarshalTraces(one)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, string(b))
			}
		}
	}
	return keys
}

// spanIDsByTrace lists td's span IDs per trace, in order.
func spanIDsByTrace(td ptrace.Traces) map[pcommon.TraceID][]pcommon.SpanID {
	out := map[pcommon.TraceID][]pcommon.SpanID{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out[sp.TraceID()] = append(out[sp.TraceID()], sp.SpanID())
			}
		}
	}
	return out
}

// checkSplit checks the chunks of raw, td's encoding, split n ways.
func checkSplit(t *testing.T, td ptrace.Traces, raw []byte, n int) {
	t.Helper()
	var sp Splitter
	chunks, err := sp.Split(raw, n)
	if err != nil {
		t.Fatal(err)
	}
	if want := max(n, 1); len(chunks) != want {
		t.Fatalf("%d chunks, want %d", len(chunks), want)
	}
	// Given each span's chunk, SplitAssigned cuts the same chunks.
	var assign []int32
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				assign = append(assign, int32(ChunkOf(s.TraceID(), n)))
			}
		}
	}
	var sa Splitter
	assigned, err := sa.SplitAssigned(raw, n, assign)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(chunks, assigned, bytes.Equal) {
		t.Fatal("SplitAssigned cut other chunks than Split")
	}
	if n > 1 {
		if _, err := sa.SplitAssigned(raw, n, assign[1:]); err == nil {
			t.Fatal("SplitAssigned with a span too few assigned: no error")
		}
		if _, err := sa.SplitAssigned(raw, n, append(assign, 0)); err == nil {
			t.Fatal("SplitAssigned with a span too many assigned: no error")
		}
	}
	var u ptrace.ProtoUnmarshaler
	var got []string
	var all []byte
	for c, chunk := range chunks {
		if n > 1 && len(chunk) != cap(chunk) {
			t.Fatalf("chunk %d: %d bytes, %d measured", c, len(chunk), cap(chunk))
		}
		part, err := u.UnmarshalTraces(chunk)
		if err != nil {
			t.Fatalf("chunk %d of %d: %v", c, n, err)
		}
		for id := range spanIDsByTrace(part) {
			if ChunkOf(id, n) != c {
				t.Fatalf("trace %x in chunk %d, want %d", id, c, ChunkOf(id, n))
			}
		}
		got = append(got, spanKeys(t, part)...)
		all = append(all, chunk...)
	}
	want := spanKeys(t, td)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("n=%d: chunks hold %d spans, batch %d, or they differ", n, len(got), len(want))
	}
	// The chunks back to back decode as one batch; a trace's spans keep their order.
	merged, err := u.UnmarshalTraces(all)
	if err != nil {
		t.Fatal(err)
	}
	if merged.SpanCount() != td.SpanCount() {
		t.Fatalf("concatenated chunks: %d spans, want %d", merged.SpanCount(), td.SpanCount())
	}
	wantOrder, gotOrder := spanIDsByTrace(td), spanIDsByTrace(merged)
	for id, ids := range wantOrder {
		if !slices.Equal(ids, gotOrder[id]) {
			t.Fatalf("trace %x: spans %v, want %v", id, gotOrder[id], ids)
		}
	}
}

func TestSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 60 {
		td := splitBatch(rng, 1+rng.IntN(30))
		for _, enc := range []struct {
			name string
			raw  []byte
		}{{"pdata", pdataBytes(t, td)}, {"go", goBytes(t, td)}} {
			for _, n := range []int{1, 2, 3, 7, 16} {
				t.Run(fmt.Sprintf("%d/%s/%d", i, enc.name, n), func(t *testing.T) {
					checkSplit(t, td, enc.raw, n)
				})
			}
		}
	}
}

func TestSplitOneIsInput(t *testing.T) {
	td := splitBatch(rand.New(rand.NewPCG(5, 6)), 10)
	raw := pdataBytes(t, td)
	var sp Splitter
	for _, n := range []int{-1, 0, 1} {
		chunks, err := sp.Split(raw, n)
		if err != nil || len(chunks) != 1 || !bytes.Equal(chunks[0], raw) {
			t.Fatalf("n=%d: %d chunks, err %v", n, len(chunks), err)
		}
	}
}

// TestSplitReused: a Splitter's buffers from a bigger split leave nothing in a smaller one.
func TestSplitReused(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var sp Splitter
	big := pdataBytes(t, splitBatch(rng, 40))
	if _, err := sp.Split(big, 9); err != nil {
		t.Fatal(err)
	}
	td := splitBatch(rng, 5)
	chunks, err := sp.Split(pdataBytes(t, td), 4)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	var u ptrace.ProtoUnmarshaler
	for _, c := range chunks {
		part, err := u.UnmarshalTraces(c)
		if err != nil {
			t.Fatal(err)
		}
		total += part.SpanCount()
	}
	if total != td.SpanCount() {
		t.Fatalf("%d spans, want %d", total, td.SpanCount())
	}
}

// TestSplitDeprecatedScopeSpans: spans under instrumentation_library_spans (field 1000)
// are split too, not copied into every chunk.
func TestSplitDeprecatedScopeSpans(t *testing.T) {
	td := splitBatch(rand.New(rand.NewPCG(9, 10)), 20)
	raw := renumberScopeSpans(t, pdataBytes(t, td), fieldResourceSpansScopeSpans, FieldResourceSpansDeprecatedScopeSpans)
	var sp Splitter
	chunks, err := sp.Split(raw, 5)
	if err != nil {
		t.Fatal(err)
	}
	var u ptrace.ProtoUnmarshaler
	total := 0
	for c, chunk := range chunks {
		// pdata (v1.68) ignores field 1000: read its spans as scope_spans.
		part, err := u.UnmarshalTraces(renumberScopeSpans(t, chunk, FieldResourceSpansDeprecatedScopeSpans, fieldResourceSpansScopeSpans))
		if err != nil {
			t.Fatal(err)
		}
		for id := range spanIDsByTrace(part) {
			if ChunkOf(id, 5) != c {
				t.Fatalf("trace %x in chunk %d", id, c)
			}
		}
		total += part.SpanCount()
	}
	if total != td.SpanCount() {
		t.Fatalf("%d spans, want %d", total, td.SpanCount())
	}
}

// renumberScopeSpans rewrites every field from of raw's ResourceSpans as field to.
func renumberScopeSpans(t *testing.T, raw []byte, from, to protowire.Number) []byte {
	t.Helper()
	var out []byte
	for b := raw; len(b) > 0; {
		num, typ, rs, n := ConsumeField(b)
		if n < 0 {
			t.Fatal("malformed")
		}
		if num != fieldTracesDataResourceSpans {
			out = append(out, b[:n]...)
			b = b[n:]
			continue
		}
		b = b[n:]
		var nrs []byte
		for r := rs; len(r) > 0; {
			num, _, v, n := ConsumeField(r)
			if num == from {
				nrs = protowire.AppendTag(nrs, to, protowire.BytesType)
				nrs = protowire.AppendBytes(nrs, v)
			} else {
				nrs = append(nrs, r[:n]...)
			}
			r = r[n:]
		}
		out = protowire.AppendTag(out, num, typ)
		out = protowire.AppendBytes(out, nrs)
	}
	return out
}

func TestChunkOf(t *testing.T) {
	// 64-bit IDs (zero high half) with the same low bits still spread.
	seen := map[int]bool{}
	for i := range 64 {
		var id pcommon.TraceID
		id[15] = byte(i << 4)
		seen[ChunkOf(id, 16)] = true
	}
	if len(seen) < 8 {
		t.Fatalf("64 IDs differing in a few bits fall in %d chunks of 16", len(seen))
	}
	if ChunkOf(pcommon.TraceID{1}, 1) != 0 || ChunkOf(pcommon.TraceID{1}, 0) != 0 {
		t.Fatal("one chunk")
	}
}

// FuzzSplit: Split never panics; what it accepts, when pdata decodes it too, it splits
// into chunks that decode, holding as many spans.
func FuzzSplit(f *testing.F) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 4 {
		// Small seeds: the fuzzer minimizes every new input, which on a batch of
		// hundreds of spans took it minutes.
		td := encodesBatch(rng)
		var m ptrace.ProtoMarshaler
		b, _ := m.MarshalTraces(td)
		f.Add(b, uint8(3))
		f.Add(b[:len(b)/2], uint8(2))
	}
	f.Add([]byte{0x0a, 0x05, 0x12, 0x03, 0x12, 0x01, 0x0a}, uint8(2))
	f.Add([]byte{0x0a, 0xff}, uint8(4))
	var u ptrace.ProtoUnmarshaler
	f.Fuzz(func(t *testing.T, raw []byte, n uint8) {
		var sp Splitter
		chunks, err := sp.Split(raw, int(n%20))
		if err != nil {
			return
		}
		td, err := u.UnmarshalTraces(raw)
		if err != nil {
			return
		}
		total := 0
		for _, c := range chunks {
			part, err := u.UnmarshalTraces(c)
			if err != nil {
				t.Fatalf("chunk does not decode: %v", err)
			}
			total += part.SpanCount()
		}
		if total != td.SpanCount() {
			t.Fatalf("chunks hold %d spans, batch %d", total, td.SpanCount())
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	td := benchdata.TelemetrygenShaped(512, 5)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	benchdata.Refresh(spans, 5, rand.New(rand.NewPCG(9, 9)), time.Now())
	var m ptrace.ProtoMarshaler
	raw, _ := m.MarshalTraces(td)
	n := (len(raw) + 32<<10 - 1) / (32 << 10)
	assign := make([]int32, spans.Len())
	for i, s := range spans.All() {
		assign[i] = int32(ChunkOf(s.TraceID(), n))
	}
	var sp Splitter
	b.Run("ids", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := sp.Split(raw, n); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
	})
	b.Run("assigned", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := sp.SplitAssigned(raw, n, assign); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
	})
}
