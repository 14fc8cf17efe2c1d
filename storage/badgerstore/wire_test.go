package badgerstore

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/otlpwire"
)

// mixedBlock builds a block of three traces over two resources and three scopes, with
// every kind of span content, so that filtering must keep resources, scopes and spans
// intact and drop only other traces' spans.
func mixedBlock() (ptrace.Traces, []pcommon.TraceID) {
	ids := []pcommon.TraceID{{1, 1}, {2, 2}, {3, 3}}
	td := ptrace.NewTraces()
	for r := 0; r < 2; r++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		rs.Resource().Attributes().PutStr("service.name", []string{"a", "b"}[r])
		rs.Resource().Attributes().PutInt("r", int64(r))
		for s := 0; s < 2; s++ {
			if r == 1 && s == 1 {
				break
			}
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("scope")
			ss.Scope().SetVersion("1.0")
			ss.Scope().Attributes().PutBool("s", s == 0)
			for i := 0; i < 7; i++ {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(ids[(i+r+s)%3])
				sp.SetSpanID(pcommon.SpanID{byte(r), byte(s), byte(i), 1})
				sp.SetParentSpanID(pcommon.SpanID{9})
				sp.SetName("op")
				sp.SetKind(ptrace.SpanKindClient)
				sp.SetStartTimestamp(pcommon.Timestamp(1000 + i))
				sp.SetEndTimestamp(pcommon.Timestamp(2000 + i))
				sp.TraceState().FromRaw("ot=th:8")
				sp.Attributes().PutStr("k", "v")
				sp.Attributes().PutEmptySlice("list").AppendEmpty().SetInt(3)
				ev := sp.Events().AppendEmpty()
				ev.SetName("ev")
				ev.Attributes().PutDouble("d", 1.5)
				ln := sp.Links().AppendEmpty()
				ln.SetTraceID(ids[0])
				ln.SetSpanID(pcommon.SpanID{7})
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("bad")
			}
		}
	}
	return td, ids
}

// wantOnly is td with only the spans of id, resources and scopes left empty removed:
// what filterTrace must produce, built with pdata.
func wantOnly(td ptrace.Traces, id pcommon.TraceID) ptrace.Traces {
	out := ptrace.NewTraces()
	td.CopyTo(out)
	out.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(sp ptrace.Span) bool { return sp.TraceID() != id })
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	return out
}

func TestFilterTrace(t *testing.T) {
	td, ids := mixedBlock()
	raw, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append(ids, pcommon.TraceID{4, 4}) {
		got, n, err := otlpwire.FilterTrace(nil, raw, id)
		if err != nil {
			t.Fatalf("filter %s: %v", id, err)
		}
		want := wantOnly(td, id)
		if n != want.SpanCount() {
			t.Errorf("filter %s: %d spans, want %d", id, n, want.SpanCount())
		}
		wantRaw, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(want)
		if err != nil {
			t.Fatal(err)
		}
		// Byte equality: pdata marshals fields in a fixed order, and filterTrace keeps
		// every kept field's bytes as they were.
		if string(got) != string(wantRaw) {
			gotTD, uerr := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(got)
			gj, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(gotTD)
			wj, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(want)
			t.Errorf("filter %s (unmarshal err %v):\n got %s\nwant %s", id, uerr, gj, wj)
		}
	}
}

// FuzzFilterTrace feeds arbitrary bytes to the block filter: it must return an error or
// a well-formed TracesData holding only spans of the wanted trace, never panic.
func FuzzFilterTrace(f *testing.F) {
	td, ids := mixedBlock()
	raw, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	f.Add(raw, ids[0][:])
	f.Add(raw[:len(raw)/2], ids[1][:])
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00}, ids[2][:])
	f.Fuzz(func(t *testing.T, raw, idBytes []byte) {
		var id pcommon.TraceID
		copy(id[:], idBytes)
		out, n, err := otlpwire.FilterTrace(nil, raw, id)
		if err != nil {
			return
		}
		got, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(out)
		if err != nil {
			// The input's spans may themselves be malformed deeper than the filter looks;
			// the filter only promises to cut along well-formed framing.
			return
		}
		if got.SpanCount() != n {
			t.Fatalf("filter says %d spans, output holds %d", n, got.SpanCount())
		}
		rss := got.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					if spans.At(k).TraceID() != id {
						t.Fatalf("output holds a span of trace %s, want only %s", spans.At(k).TraceID(), id)
					}
				}
			}
		}
	})
}

// FuzzStoredValues feeds arbitrary bytes to every decoder of stored values: a corrupt
// value must give an error, never a panic or a huge allocation.
func FuzzStoredValues(f *testing.F) {
	var sum summary
	sum.minStart, sum.maxEnd, sum.spans = 10, 20, 3
	sum.addService("svc", 3, 1, 0)
	f.Add(sum.appendFragment(nil))
	sum.addService("api", 4, 0, 2)
	f.Add(sum.appendFragment(nil))
	sg := &segment{bucket: 3, id: 4, maxStart: 9, blocks: []headBlock{{ref: blockRef{bucket: 3, hash: 5}, seq: 6}}, first: []uint64{7}, bloom: newBloom(2)}
	sg.bloom.add(7)
	f.Add(sg.appendDir(nil))
	rows := []tableRow{{id: pcommon.TraceID{1}, minStart: 5, maxStart: 9}, {id: pcommon.TraceID{2}, minStart: 7, maxStart: 7}}
	f.Add(appendTable(nil, rows))
	f.Add(appendPosting(nil, 0, []postingEntry{{row: 1, first: 7, last: 7}}, rows))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s summary
		_ = s.decodeFragment(b, true)
		_, _ = decodeSegDir(appendSegDirKey(nil, 3, 4), b)
		if v, ok := decodeValueKey(append([]byte{prefixValue}, b...)); ok {
			if again := appendValueKey(nil, v); string(again) != string(append([]byte{prefixValue}, b...)) {
				t.Fatalf("value catalog key %x decodes to %+v, which encodes to %x", b, v, again)
			}
		}
		got, err := decodeTable(b, nil)
		if err == nil && len(got) > len(b) {
			t.Fatalf("%d rows decoded from %d bytes", len(got), len(b))
		}
		if _, rest, err := postingBucketDelta(b); err == nil {
			_, _ = decodeEntries(rest, rows, nil)
		}
	})
}

// TestFilterTraces cuts several traces in one walk and must give, for each, the same
// spans, resources and scopes as filterTrace does alone.
func TestFilterTraces(t *testing.T) {
	td, ids := mixedBlock()
	raw, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	want := append(ids[:2:2], pcommon.TraceID{4, 4}) // two present, one absent
	cut, err := otlpwire.FilterTraces(raw, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(cut) != 2 {
		t.Fatalf("cut %d traces, want the 2 present", len(cut))
	}
	var u ptrace.ProtoUnmarshaler
	var j ptrace.JSONMarshaler
	for _, id := range ids[:2] {
		got, err := u.UnmarshalTraces(cut[id])
		if err != nil {
			t.Fatalf("unmarshal cut of %s: %v", id, err)
		}
		gj, _ := j.MarshalTraces(got)
		wj, _ := j.MarshalTraces(wantOnly(td, id))
		if string(gj) != string(wj) {
			t.Errorf("trace %s:\n got %s\nwant %s", id, gj, wj)
		}
	}
}

// FuzzFilterTraces checks the one-walk cut against the per-trace cut on arbitrary input.
func FuzzFilterTraces(f *testing.F) {
	td, ids := mixedBlock()
	raw, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	f.Add(raw, ids[0][:], ids[1][:])
	f.Add(raw[:len(raw)/3], ids[2][:], ids[0][:])
	f.Fuzz(func(t *testing.T, raw, a, b []byte) {
		var ia, ib pcommon.TraceID
		copy(ia[:], a)
		copy(ib[:], b)
		cut, err := otlpwire.FilterTraces(raw, []pcommon.TraceID{ia, ib})
		if err != nil {
			return
		}
		for _, id := range []pcommon.TraceID{ia, ib} {
			one, n, err := otlpwire.FilterTrace(nil, raw, id)
			if err != nil {
				t.Fatalf("filterTraces accepted what filterTrace refuses: %v", err)
			}
			if (n > 0) != (cut[id] != nil) {
				t.Fatalf("trace %s: filterTrace found %d spans, filterTraces %d bytes", id, n, len(cut[id]))
			}
			var u ptrace.ProtoUnmarshaler
			x, errX := u.UnmarshalTraces(one)
			y, errY := u.UnmarshalTraces(cut[id])
			if errX != nil || errY != nil {
				continue // malformed deeper than the framing both cut along
			}
			if x.SpanCount() != y.SpanCount() {
				t.Fatalf("trace %s: %d spans alone, %d together", id, x.SpanCount(), y.SpanCount())
			}
		}
	})
}
