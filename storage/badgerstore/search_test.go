package badgerstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// searchBatch is 64 traces of 8 spans in one batch; every 4th trace has an error span,
// every trace lasts (i+1) ms in total.
func searchBatch(n int, base time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	svcs := []string{"gw", "orders", "payments", "ledger"}
	for s, svc := range svcs {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range 64 {
			var id pcommon.TraceID
			id[0], id[1], id[15] = 0x77, byte(n), byte(i)
			start := base.Add(time.Duration(i) * time.Second)
			for k := range 2 {
				sp := spans.AppendEmpty()
				sp.SetTraceID(id)
				sp.SetSpanID(pcommon.SpanID{byte(s), byte(k), 1})
				if s+k > 0 {
					sp.SetParentSpanID(pcommon.SpanID{0, 0, 1})
				}
				sp.SetName(fmt.Sprintf("%s-op", svc))
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i+1) * time.Millisecond)))
				sp.Attributes().PutStr("shard", fmt.Sprint(i%8))
				if svc == "payments" && k == 1 && i%4 == 0 {
					sp.Status().SetCode(ptrace.StatusCodeError)
				}
			}
		}
	}
	return td
}

func openSearchStore(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(tb.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	for n := range 8 {
		if err := s.WriteTraces(context.Background(), searchBatch(n, base.Add(time.Duration(n)*2*time.Minute))); err != nil {
			tb.Fatalf("WriteTraces: %v", err)
		}
	}
	return s
}

// TestSummaryOnlySearchLoadsNoBlock: trace duration, errors and service conditions are
// answered from summaries; searches with them must not decode a block (searches put
// every block they decode into the cache).
func TestSummaryOnlySearchLoadsNoBlock(t *testing.T) {
	s := openSearchStore(t)
	for _, q := range []storage.TraceQuery{
		{TraceDurationMin: 30 * time.Millisecond, Limit: 20},
		{ServiceName: "payments", ErrorsOnly: true, Limit: 20},
		{ServiceName: "ledger", TraceErrorsOnly: true, TraceDurationMax: 10 * time.Millisecond, Limit: 20},
		// Errors in a window: the error field's postings certify the failed spans' starts.
		{ServiceName: "payments", ErrorsOnly: true, StartTimeMin: time.Now().Add(-2 * time.Hour), StartTimeMax: time.Now(), Limit: 20},
		{ErrorsOnly: true, StartTimeMin: time.Now().Add(-2 * time.Hour), Limit: 20},
	} {
		res, err := s.SearchTraces(context.Background(), q, storage.SummariesOnly)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if len(res.Summaries) != 20 && q.TraceDurationMax == 0 {
			t.Fatalf("%+v: %d results, want 20", q, len(res.Summaries))
		}
		if len(res.Summaries) == 0 {
			t.Fatalf("%+v: no results", q)
		}
		if n := len(s.cache.byRef); n != 0 {
			t.Fatalf("%+v decoded %d blocks", q, n)
		}
	}
	// The error field answers as span verification does: payments' spans are all
	// named payments-op, so naming the operation forces reading spans.
	window := storage.TraceQuery{ServiceName: "payments", ErrorsOnly: true, StartTimeMin: time.Now().Add(-55 * time.Minute),
		StartTimeMax: time.Now().Add(-50 * time.Minute), Limit: 1000}
	byField, err := s.FindTraceIDs(context.Background(), window)
	if err != nil {
		t.Fatal(err)
	}
	window.OperationName = "payments-op"
	bySpans, err := s.FindTraceIDs(context.Background(), window)
	if err != nil {
		t.Fatal(err)
	}
	if len(byField) == 0 || fmt.Sprint(byField) != fmt.Sprint(bySpans) {
		t.Fatalf("errors in a window: error field found %d traces %v, span verification %d %v", len(byField), byField, len(bySpans), bySpans)
	}
	// A span-level condition does load blocks: the check above can fail.
	if _, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{OperationName: "payments-op", ErrorsOnly: true, Limit: 5}); err != nil {
		t.Fatalf("FindTraceIDs: %v", err)
	}
	if len(s.cache.byRef) == 0 {
		t.Fatalf("a span-level search decoded no block")
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(cursor{start: 1, id: pcommon.TraceID{1}, seq: 7}))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if !storage.IsInvalidInput(err) {
				t.Fatalf("decodeCursor(%q) error %v is not invalid input", s, err)
			}
			return
		}
		if again := encodeCursor(c); again != s {
			t.Fatalf("decodeCursor(%q) then encode = %q", s, again)
		}
	})
}

// BenchmarkSearch compares a search answered from summaries with one that verifies spans,
// and a later page through a cursor, over 512 traces of 8 spans.
func BenchmarkSearch(b *testing.B) {
	s := openSearchStore(b)
	first, err := s.SearchTraces(context.Background(), storage.TraceQuery{ServiceName: "payments", Limit: 20}, storage.SummariesOnly)
	if err != nil || first.NextCursor == "" {
		b.Fatalf("first page: %v", err)
	}
	for _, c := range []struct {
		name string
		q    storage.TraceQuery
	}{
		{"summaries/trace-duration", storage.TraceQuery{TraceDurationMin: 30 * time.Millisecond, Limit: 20}},
		{"summaries/service-errors", storage.TraceQuery{ServiceName: "payments", ErrorsOnly: true, Limit: 20}},
		{"spans/operation-errors", storage.TraceQuery{ServiceName: "payments", OperationName: "payments-op", ErrorsOnly: true, Limit: 20}},
		{"spans/or-filter", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{{Key: "shard", Values: []string{"1", "5"}}}, Limit: 20}},
		{"cursor/page-2", storage.TraceQuery{ServiceName: "payments", Limit: 20, Cursor: first.NextCursor}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := s.SearchTraces(context.Background(), c.q, storage.SummariesOnly)
				if err != nil || len(res.Summaries) != 20 {
					b.Fatalf("%d results, %v", len(res.Summaries), err)
				}
			}
		})
	}
}

// ScanTraceIDs names every trace with a span starting at or after since — from the head
// and from flushed segments alike — newest batch first, and stops when fn says so.
func TestScanTraceIDs(t *testing.T) {
	s := openSearchStore(t)
	ctx := context.Background()
	// openSearchStore's batches n = 0..7 start at base + 2n minutes, trace i of a batch
	// i seconds later.
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	scan := func(since time.Time, stopAfter int) (ids []pcommon.TraceID) {
		t.Helper()
		if err := s.ScanTraceIDs(ctx, since, func(id pcommon.TraceID) bool {
			ids = append(ids, id)
			return len(ids) != stopAfter
		}); err != nil {
			t.Fatalf("ScanTraceIDs: %v", err)
		}
		return ids
	}
	want := func(since time.Time) map[pcommon.TraceID]bool {
		m := map[pcommon.TraceID]bool{}
		for n := range 8 {
			for i := range 64 {
				if !base.Add(time.Duration(n)*2*time.Minute + time.Duration(i)*time.Second).Before(since) {
					m[pcommon.TraceID{0x77, byte(n), 15: byte(i)}] = true
				}
			}
		}
		return m
	}
	check := func(stage string) {
		t.Helper()
		for _, since := range []time.Time{base.Add(-time.Minute), base.Add(7 * time.Minute), base.Add(14*time.Minute + 30*time.Second)} {
			ids := scan(since, 0)
			got := map[pcommon.TraceID]bool{}
			for _, id := range ids {
				got[id] = true
			}
			w := want(since)
			if len(ids) != len(w) || len(got) != len(w) {
				t.Fatalf("%s, since %v: %d IDs (%d distinct), want %d", stage, since.Sub(base), len(ids), len(got), len(w))
			}
			for id := range w {
				if !got[id] {
					t.Fatalf("%s, since %v: trace %x not named", stage, since.Sub(base), id)
				}
			}
			if ids[0][1] != 7 {
				t.Fatalf("%s: first ID named %x, want one of the newest batch (7)", stage, ids[0])
			}
		}
		if ids := scan(base.Add(-time.Minute), 10); len(ids) != 10 {
			t.Fatalf("%s: %d IDs named after fn asked to stop at 10", stage, len(ids))
		}
	}
	check("head")
	if err := s.flushHead(); err != nil {
		t.Fatal(err)
	}
	check("segments")
}

// TestIntegerAttributeFields checks the write path's integer attribute fields: each is
// the field of the value's decimal string, whether hashed afresh or reused from the
// previous span of the resource (the same key with the same number, another number, or
// the same digits as a string).
func TestIntegerAttributeFields(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now().Add(-time.Minute)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	// One span per trace, consecutive in the resource: value i is trace i's.
	values := []any{int64(200), int64(200), int64(404), "404", int64(404), int64(-7), "200", int64(200)}
	for i, v := range values {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0x42, byte(i + 1)})
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		sp.SetName("call")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i+1) * time.Millisecond)))
		sp.Attributes().PutStr("other", fmt.Sprint(i%2))
		switch v := v.(type) {
		case int64:
			sp.Attributes().PutInt("http.status", v)
		case string:
			sp.Attributes().PutStr("http.status", v)
		}
	}
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"200", "404", "-7"} {
		var wantIDs []byte
		for i, v := range values {
			if fmt.Sprint(v) == want {
				wantIDs = append(wantIDs, byte(i+1))
			}
		}
		got, err := s.FindTraces(context.Background(), storage.TraceQuery{ServiceName: "api",
			Attributes: map[string]string{"http.status": want}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []byte
		for _, tr := range got {
			gotIDs = append(gotIDs, tr.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()[1])
		}
		slices.Sort(gotIDs)
		if !slices.Equal(gotIDs, wantIDs) {
			t.Errorf("http.status=%s: traces %v, want %v", want, gotIDs, wantIDs)
		}
	}
}

// TestSpanAttributeFieldsAnyOrder writes spans whose attributes repeat, change, appear,
// vanish and come in shuffled order from span to span of a resource (as SDKs that keep
// attributes in a Go map send them), in two resources whose spans the writer visits
// alternately, and checks that a search for every key and value finds exactly the
// traces that carry it: an attribute's field is the same whether hashed afresh or
// reused from the resource's previous span, wherever that span had it.
func TestSpanAttributeFieldsAnyOrder(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 11))
	start := time.Now().Add(-time.Minute)
	td := ptrace.NewTraces()
	svcs := []string{"api", "db"}
	var spans [2]ptrace.SpanSlice
	for r, svc := range svcs {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		spans[r] = rs.ScopeSpans().AppendEmpty().Spans()
	}
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	// want[service][key=value] is the set of traces (by number) carrying it.
	want := [2]map[string]map[int]bool{{}, {}}
	const traces = 400
	for tr := 0; tr < traces; tr++ {
		for r := range svcs {
			sp := spans[r].AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{0x51, byte(tr >> 8), byte(tr)})
			sp.SetSpanID(pcommon.SpanID{byte(r + 1), byte(tr >> 8), byte(tr)})
			sp.SetName("op")
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(tr) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(tr+1) * time.Millisecond)))
			// Mostly the same attributes as the last span, in an order shuffled now
			// and then, values changing now and then, keys coming and going.
			n := 3 + rng.IntN(len(keys)-2)
			order := slices.Clone(keys)
			if rng.IntN(3) == 0 {
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
			for _, k := range order[:n] {
				v := "same"
				if rng.IntN(4) == 0 {
					v = fmt.Sprint("v", rng.IntN(3))
				}
				if rng.IntN(10) == 0 {
					sp.Attributes().PutEmptySlice("list." + k).AppendEmpty().SetStr("not indexed")
				}
				sp.Attributes().PutStr(k, v)
				kv := k + "=" + v
				if want[r][kv] == nil {
					want[r][kv] = map[int]bool{}
				}
				want[r][kv][tr] = true
			}
		}
	}
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	for r, svc := range svcs {
		for kv, set := range want[r] {
			k, v, _ := strings.Cut(kv, "=")
			got, err := s.FindTraces(context.Background(), storage.TraceQuery{ServiceName: svc,
				Attributes: map[string]string{k: v}, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs, wantIDs []int
			for _, g := range got {
				id := g.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
				gotIDs = append(gotIDs, int(id[1])<<8|int(id[2]))
			}
			for tr := range set {
				wantIDs = append(wantIDs, tr)
			}
			slices.Sort(gotIDs)
			slices.Sort(wantIDs)
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("%s %s: %d traces, want %d (%v…, want %v…)", svc, kv, len(gotIDs), len(wantIDs),
					gotIDs[:min(5, len(gotIDs))], wantIDs[:min(5, len(wantIDs))])
			}
		}
	}
}

// TestSearchServiceNameAttribute: the resource attribute service.name is not indexed as
// an attribute (its service's field stands in for it), yet a search for it finds what
// a search for any attribute would: traces with a span whose resource, scope or own
// attributes carry it — in the head and in flushed segments.
func TestSearchServiceNameAttribute(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	td := ptrace.NewTraces()
	span := func(svc string, trace byte, attr string) {
		rs := td.ResourceSpans().AppendEmpty()
		if svc != "" {
			rs.Resource().Attributes().PutStr("service.name", svc)
		}
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0x51, trace})
		sp.SetSpanID(pcommon.SpanID{trace, byte(td.ResourceSpans().Len())})
		sp.SetName("op")
		start := base.Add(time.Duration(trace) * time.Second)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		if attr != "" {
			sp.Attributes().PutStr("service.name", attr) // a span attribute of that name
		}
	}
	span("a", 1, "")
	span("b", 2, "")
	span("a", 3, "")
	span("b", 3, "")
	span("c", 4, "a")
	span("", 5, "")
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		q    storage.TraceQuery
		want []byte // traces, by their second ID byte
	}{
		{"any service", storage.TraceQuery{Attributes: map[string]string{"service.name": "a"}}, []byte{1, 3, 4}},
		{"its service", storage.TraceQuery{ServiceName: "a", Attributes: map[string]string{"service.name": "a"}}, []byte{1, 3}},
		{"span attribute", storage.TraceQuery{ServiceName: "c", Attributes: map[string]string{"service.name": "a"}}, []byte{4}},
		{"other service", storage.TraceQuery{ServiceName: "b", Attributes: map[string]string{"service.name": "a"}}, nil},
		{"empty value", storage.TraceQuery{Attributes: map[string]string{"service.name": ""}}, nil},
		{"or", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{{Key: "service.name", Values: []string{"a", "b"}}}}, []byte{1, 2, 3, 4}},
		{"or with another condition", storage.TraceQuery{OperationName: "op", ServiceName: "b",
			AttributeFilters: []storage.AttributeFilter{{Key: "service.name", Values: []string{"a", "b"}}}}, []byte{2, 3}},
	}
	for _, where := range []string{"head", "segments"} {
		if where == "segments" {
			if err := s.flushHead(); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			q := c.q
			q.Limit = 100
			ids, err := s.FindTraceIDs(context.Background(), q)
			if err != nil {
				t.Fatalf("%s, %s: %v", where, c.name, err)
			}
			var got []byte
			for _, id := range ids {
				got = append(got, id[1])
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s, %s: traces %v, want %v", where, c.name, got, c.want)
			}
		}
	}
}
