package otlpwire

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spoortrace/spoor/internal/benchdata"
)

func encodesBatch(rng *rand.Rand) ptrace.Traces {
	td := ptrace.NewTraces()
	for r := range 3 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", r))
		for s := range 1 + r%2 {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("lib-%d", s))
			for range 1 + rng.IntN(6) {
				sp := ss.Spans().AppendEmpty()
				var tid pcommon.TraceID
				var sid pcommon.SpanID
				binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
				binary.LittleEndian.PutUint64(tid[8:], rng.Uint64())
				binary.LittleEndian.PutUint64(sid[:], rng.Uint64())
				sp.SetTraceID(tid)
				sp.SetSpanID(sid)
				if rng.IntN(2) == 0 {
					sp.TraceState().FromRaw("ot=th:8;rv=00112233445566,vendor=v")
				}
				sp.SetName("op")
				sp.Attributes().PutInt("n", int64(rng.IntN(100)))
			}
		}
	}
	return td
}

func pdataBytes(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goBytes encodes td as Go's protobuf does (fields in ascending order: IDs first).
func goBytes(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(pdataBytes(t, td), &req); err != nil {
		t.Fatal(err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodes: a batch matches its own encoding, as pdata and as Go's protobuf write it;
// every change the sampler can make (a span dropped, a tracestate rewritten), and any
// other difference in resources, scopes, IDs or bytes, does not.
func TestEncodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 50 {
		td := encodesBatch(rng)
		for name, raw := range map[string][]byte{"pdata": pdataBytes(t, td), "go": goBytes(t, td)} {
			if !Encodes(raw, td) {
				t.Fatalf("round %d, %s encoding: its own batch does not match", round, name)
			}
			if len(raw) > 0 && Encodes(raw[:len(raw)-1], td) {
				t.Fatalf("round %d, %s: truncated bytes match", round, name)
			}
		}
		raw := pdataBytes(t, td)
		changes := map[string]func(ptrace.Traces){
			"span dropped": func(c ptrace.Traces) {
				ss := c.ResourceSpans().At(rng.IntN(3)).ScopeSpans().At(0).Spans()
				ss.RemoveIf(func(ptrace.Span) bool { return true })
			},
			"tracestate rewritten": func(c ptrace.Traces) {
				c.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceState().FromRaw("ot=th:c")
			},
			"trace ID changed": func(c ptrace.Traces) {
				sp := c.ResourceSpans().At(2).ScopeSpans().At(0).Spans().At(0)
				id := sp.TraceID()
				id[15]++
				sp.SetTraceID(id)
			},
			"span ID changed": func(c ptrace.Traces) {
				sp := c.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0)
				id := sp.SpanID()
				id[0]++
				sp.SetSpanID(id)
			},
			"resource added": func(c ptrace.Traces) { c.ResourceSpans().AppendEmpty() },
			"scope added":    func(c ptrace.Traces) { c.ResourceSpans().At(0).ScopeSpans().AppendEmpty() },
			"span added": func(c ptrace.Traces) {
				c.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(c.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty())
			},
			"resources reordered": func(c ptrace.Traces) {
				c.ResourceSpans().At(0).CopyTo(c.ResourceSpans().AppendEmpty())
				c.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool { return rs.ScopeSpans().Len() > 0 && rs == c.ResourceSpans().At(0) })
			},
		}
		for name, change := range changes {
			c := ptrace.NewTraces()
			td.CopyTo(c)
			change(c)
			if Encodes(raw, c) {
				t.Fatalf("round %d: %s, yet the bytes match", round, name)
			}
		}
	}
	if Encodes([]byte{0x0a, 0x05, 0x12, 0x03, 0x12, 0x01, 0x00}, encodesBatch(rng)) {
		t.Fatal("foreign bytes match")
	}
	if !Encodes(nil, ptrace.NewTraces()) {
		t.Fatal("an empty batch does not match empty bytes")
	}
}

func FuzzEncodes(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	td := encodesBatch(rng)
	raw, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	f.Add(raw)
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Never panics; and bytes that pdata decodes into td's shape match only if
		// they decode to the same IDs and tracestates.
		got := Encodes(b, td)
		if !got {
			return
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			return // pdata refuses what the walk accepted: nothing stored either way
		}
		dec := req.Traces()
		if dec.SpanCount() != td.SpanCount() {
			t.Fatalf("matched bytes decode to %d spans, batch has %d", dec.SpanCount(), td.SpanCount())
		}
	})
}

func BenchmarkEncodes(b *testing.B) {
	td := benchdata.TelemetrygenShaped(512, 5)
	benchdata.Refresh(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans(), 5, rand.New(rand.NewPCG(9, 9)), time.Now())
	raw, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	var m ptrace.ProtoMarshaler
	b.Run("encodes", func(b *testing.B) {
		for b.Loop() {
			if !Encodes(raw, td) {
				b.Fatal("no match")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
	})
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.MarshalTraces(td); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
	})
}
