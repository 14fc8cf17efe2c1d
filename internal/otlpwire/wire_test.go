package otlpwire

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// referenceTraceIDField is the generic walk spanTraceIDField writes out: protowire's
// own field parsing.
func referenceTraceIDField(sp []byte) ([]byte, bool, error) {
	for len(sp) > 0 {
		num, typ, v, n := ConsumeField(sp)
		if n < 0 {
			return nil, false, ErrMalformed
		}
		if num == fieldSpanTraceID && typ == protowire.BytesType {
			return v, true, nil
		}
		sp = sp[n:]
	}
	return nil, false, nil
}

// encodedSpans returns the encoded Spans of a block the way the store writes one, with
// attributes, events, links and big field numbers (flags, status) before the trace ID.
func encodedSpans(t testing.TB, n int) [][]byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		sp := spans.AppendEmpty()
		var id pcommon.TraceID
		for j := range id {
			id[j] = byte(rng.UintN(256))
		}
		sp.SetTraceID(id)
		sp.SetSpanID(pcommon.SpanID{byte(i), 1})
		sp.SetName("GET /x")
		sp.SetStartTimestamp(pcommon.Timestamp(rng.Uint64()))
		sp.SetEndTimestamp(pcommon.Timestamp(rng.Uint64()))
		sp.SetFlags(uint32(i))
		sp.Status().SetCode(ptrace.StatusCode(i % 3))
		for a := range i % 12 {
			sp.Attributes().PutInt(string(rune('a'+a)), rng.Int64())
		}
		if i%5 == 0 {
			sp.Events().AppendEmpty().SetName("ev")
			sp.Links().AppendEmpty().SetTraceID(pcommon.TraceID{9})
		}
	}
	var m ptrace.ProtoMarshaler
	raw, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	_, _, rsb, _ := ConsumeField(raw)
	for r := rsb; len(r) > 0; {
		num, _, ss, k := ConsumeField(r)
		r = r[k:]
		if num != fieldResourceSpansScopeSpans {
			continue
		}
		for s := ss; len(s) > 0; {
			num, _, sp, k := ConsumeField(s)
			s = s[k:]
			if num == fieldScopeSpansSpans {
				out = append(out, sp)
			}
		}
	}
	if len(out) != n {
		t.Fatalf("%d encoded spans, want %d", len(out), n)
	}
	return out
}

func checkSame(t *testing.T, sp []byte) {
	t.Helper()
	got, gotOK, gotErr := spanTraceIDField(sp)
	want, wantOK, wantErr := referenceTraceIDField(sp)
	if !bytes.Equal(got, want) || gotOK != wantOK || (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("span %x: got %x %v %v, want %x %v %v", sp, got, gotOK, gotErr, want, wantOK, wantErr)
	}
}

// TestSpanTraceIDField: the written-out walk finds what protowire's finds, on spans as
// pdata encodes them and on every truncation and single-byte corruption of them.
func TestSpanTraceIDField(t *testing.T) {
	for i, sp := range encodedSpans(t, 40) {
		id, err := SpanTraceID(sp)
		if v, _, _ := referenceTraceIDField(sp); err != nil || !bytes.Equal(id[:], v) || len(v) != 16 {
			t.Fatalf("span %d: SpanTraceID = %x, %v; want %x", i, id, err, v)
		}
		for n := 0; n <= len(sp); n++ {
			checkSame(t, sp[:n])
		}
		for j := range sp {
			for _, b := range []byte{0x00, 0x07, 0x0a, 0x0b, 0x7f, 0x80, 0xff} {
				c := bytes.Clone(sp)
				c[j] = b
				checkSame(t, c)
			}
		}
	}
	for _, sp := range [][]byte{
		{}, {0x00}, {0x0a}, {0x0a, 0x10}, {0x08, 0x80}, {0x0b, 0x0c}, {0x0c},
		{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, // an 11-byte varint
		{0x09, 1, 2, 3}, {0x0d, 1, 2}, {0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00}, // field 2^29-1
	} {
		checkSame(t, sp)
	}
}

func FuzzSpanTraceIDField(f *testing.F) {
	for _, sp := range encodedSpans(f, 8) {
		f.Add(sp)
	}
	f.Fuzz(func(t *testing.T, sp []byte) { checkSame(t, sp) })
}

func BenchmarkSpanTraceID(b *testing.B) {
	spans := encodedSpans(b, 512)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, sp := range spans {
			if _, err := SpanTraceID(sp); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
}

func BenchmarkSpanTraceIDProtowire(b *testing.B) {
	spans := encodedSpans(b, 512)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, sp := range spans {
			if _, _, err := referenceTraceIDField(sp); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
}

// block is a TracesData of n spans over traces ids (round robin), in two resources, in
// which every span links to the next trace and carries the previous one's ID bytes in
// an attribute value: a wanted ID occurs in spans of other traces too.
func block(t testing.TB, n int, ids []pcommon.TraceID) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	for r := range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", string(rune('a'+r)))
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := r; i < n; i += 2 {
			sp := spans.AppendEmpty()
			sp.SetTraceID(ids[i%len(ids)])
			sp.SetSpanID(pcommon.SpanID{byte(i), byte(i >> 8), 1})
			sp.SetName("op")
			sp.Links().AppendEmpty().SetTraceID(ids[(i+1)%len(ids)])
			prev := ids[(i+len(ids)-1)%len(ids)]
			sp.Attributes().PutStr("prev", string(prev[:]))
			sp.Attributes().PutInt("i", int64(i))
		}
	}
	raw, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestFilterTracesScanned: cutting with the occurrence scan (few wanted traces) gives
// the same bytes as reading every span's trace ID (many), and as FilterTrace.
func TestFilterTracesScanned(t *testing.T) {
	var ids []pcommon.TraceID
	for i := range 7 {
		ids = append(ids, pcommon.TraceID{byte(i + 1), 2, 3, byte(i * 7)})
	}
	raw := block(t, 300, ids)
	absent := []pcommon.TraceID{{0xee, 1}, {0xee, 2}, {0xee, 3}, {0xee, 4}, {0xee, 5}}
	for k := 1; k <= maxScannedIDs; k++ {
		want := ids[:k]
		scanned, err := FilterTraces(raw, want)
		if err != nil {
			t.Fatal(err)
		}
		read, err := FilterTraces(raw, append(slices.Clone(want), absent...))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range want {
			if len(scanned[id]) == 0 || !bytes.Equal(scanned[id], read[id]) {
				t.Fatalf("%d wanted, trace %v: scanned cut %d bytes, read cut %d bytes", k, id, len(scanned[id]), len(read[id]))
			}
			one, n, err := FilterTrace(nil, raw, id)
			if err != nil || !bytes.Equal(normalized(t, one), normalized(t, scanned[id])) {
				t.Fatalf("trace %v: FilterTrace %d bytes (%v), FilterTraces %d", id, len(one), err, len(scanned[id]))
			}
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(one)
			if err != nil || td.SpanCount() != n || n != (300+len(ids)-1-slices.Index(ids, id))/len(ids) {
				t.Fatalf("trace %v: %d spans cut (%v), FilterTrace says %d", id, td.SpanCount(), err, n)
			}
		}
		for _, id := range absent {
			if _, ok := read[id]; ok {
				t.Fatalf("absent trace %v cut", id)
			}
		}
	}
}

// normalized is a TracesData marshaled again: FilterTrace and FilterTraces order a
// scope's fields differently.
func normalized(t *testing.T, b []byte) []byte {
	t.Helper()
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkFilterTraces cuts k traces out of a 512-span block of 100 traces with random
// IDs: up to maxScannedIDs, the spans holding none of their IDs are stepped over whole.
func BenchmarkFilterTraces(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	var ids []pcommon.TraceID
	for range 100 {
		var id pcommon.TraceID
		for j := range id {
			id[j] = byte(rng.UintN(256))
		}
		ids = append(ids, id)
	}
	raw := block(b, 512, ids)
	for _, k := range []int{1, 2, 4, 5, 16} {
		b.Run("wanted="+strconv.Itoa(k), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := FilterTraces(raw, ids[:k]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
