package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// richTrace has every field a span can carry, each set to a non-default value.
func richTrace(id pcommon.TraceID, start time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "rich-svc")
	ra.PutStr("host.name", "h1")
	rs.Resource().SetDroppedAttributesCount(2)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.SetSchemaUrl("https://scope.schema")
	ss.Scope().SetName("io.spoor.lib")
	ss.Scope().SetVersion("1.2.3")
	ss.Scope().Attributes().PutStr("scope.attr", "s")
	ss.Scope().SetDroppedAttributesCount(1)

	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(id)
	sp.SetSpanID(spanID(0x1111))
	sp.SetParentSpanID(spanID(0x2222))
	sp.TraceState().FromRaw("th=8,rv=abcdef01234567")
	sp.SetFlags(0x101)
	sp.SetName("POST /checkout")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(1234567 * time.Nanosecond)))
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.Status().SetMessage("card declined")
	a := sp.Attributes()
	a.PutStr("str", "v")
	a.PutInt("int", -42)
	a.PutDouble("double", 3.25)
	a.PutBool("bool", true)
	a.PutEmptyBytes("bytes").FromRaw([]byte{0, 1, 2, 255})
	sl := a.PutEmptySlice("slice")
	sl.AppendEmpty().SetStr("x")
	sl.AppendEmpty().SetInt(7)
	m := a.PutEmptyMap("map")
	m.PutStr("k", "v")
	m.PutEmptyMap("nested").PutBool("b", false)
	a.PutEmpty("empty")
	sp.SetDroppedAttributesCount(3)

	ev := sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Microsecond)))
	ev.Attributes().PutStr("exception.message", "boom")
	ev.Attributes().PutInt("n", 1)
	ev.SetDroppedAttributesCount(4)
	sp.SetDroppedEventsCount(5)

	l := sp.Links().AppendEmpty()
	l.SetTraceID(traceID(0xbeef))
	l.SetSpanID(spanID(0x3333))
	l.TraceState().FromRaw("vendor=x")
	l.SetFlags(1)
	l.Attributes().PutStr("link.kind", "follows")
	l.SetDroppedAttributesCount(6)
	sp.SetDroppedLinksCount(7)
	return td
}

func testRoundTrip(t *testing.T, open Opener) {
	s := openFresh(t, open)
	id := traceID(1)
	in := richTrace(id, time.Now().Add(-time.Minute))
	mustWrite(t, s, in)
	got, err := s.GetTrace(context.Background(), id)
	if err != nil {
		t.Fatalf("GetTrace: %v", err)
	}
	var jm ptrace.JSONMarshaler
	want, err := jm.MarshalTraces(in)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	have, err := jm.MarshalTraces(got)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if string(want) != string(have) {
		t.Fatalf("round trip changed the trace\n got %s\nwant %s", have, want)
	}
}

func testIdempotent(t *testing.T, open Opener) {
	s := openFresh(t, open)
	id := traceID(2)
	now := time.Now().Add(-time.Minute)
	b := batch(
		spanSpec{trace: id, id: 1, service: "idem", name: "root", kind: ptrace.SpanKindServer, start: now, duration: time.Millisecond},
		spanSpec{trace: id, id: 2, parent: 1, service: "idem", name: "child", kind: ptrace.SpanKindClient, start: now, duration: time.Microsecond},
	)
	mustWrite(t, s, b)
	mustWrite(t, s, b)
	// An overlapping retry: the same spans in a different batch shape.
	mustWrite(t, s, batch(
		spanSpec{trace: id, id: 2, parent: 1, service: "idem", name: "child", kind: ptrace.SpanKindClient, start: now, duration: time.Microsecond},
		spanSpec{trace: traceID(3), id: 9, service: "idem", name: "other", start: now, duration: time.Microsecond},
	))
	got, err := s.GetTrace(context.Background(), id)
	if err != nil {
		t.Fatalf("GetTrace: %v", err)
	}
	if n := got.SpanCount(); n != 2 {
		t.Fatalf("got %d spans after retries, want 2: %v", n, spanKeys(got))
	}
	// Zipkin shared spans: same span ID, client and server: both kept.
	shared := traceID(4)
	mustWrite(t, s, batch(
		spanSpec{trace: shared, id: 7, service: "caller", name: "get", kind: ptrace.SpanKindClient, start: now, duration: time.Millisecond},
		spanSpec{trace: shared, id: 7, service: "callee", name: "get", kind: ptrace.SpanKindServer, start: now, duration: time.Millisecond},
	))
	got, err = s.GetTrace(context.Background(), shared)
	if err != nil {
		t.Fatalf("GetTrace: %v", err)
	}
	if n := got.SpanCount(); n != 2 {
		t.Fatalf("shared span: got %d spans, want 2", n)
	}
}

func testSeveralBatches(t *testing.T, open Opener) {
	s := openFresh(t, open)
	id := traceID(5)
	base := time.Now().Add(-3 * time.Hour)
	specs := []spanSpec{
		{trace: id, id: 1, service: "gateway", name: "POST /checkout", kind: ptrace.SpanKindServer, start: base, duration: 3 * time.Second},
		{trace: id, id: 2, parent: 1, service: "orders", name: "create", kind: ptrace.SpanKindServer, start: base.Add(time.Millisecond), duration: time.Second},
		{trace: id, id: 3, parent: 2, service: "payments", name: "charge", kind: ptrace.SpanKindServer, start: base.Add(2 * time.Millisecond), duration: time.Second, isError: true},
		{trace: id, id: 4, parent: 3, service: "fraud", name: "score", kind: ptrace.SpanKindServer, start: base.Add(3 * time.Millisecond), duration: time.Millisecond},
		// Two hours later: the same trace crosses a time bucket.
		{trace: id, id: 5, parent: 1, service: "notify", name: "email", kind: ptrace.SpanKindConsumer, start: base.Add(2 * time.Hour), duration: time.Millisecond},
	}
	// Children arrive first, the root last, one batch per service.
	for _, i := range []int{4, 3, 2, 1, 0} {
		mustWrite(t, s, batch(specs[i]))
	}
	got, err := s.GetTrace(context.Background(), id)
	if err != nil {
		t.Fatalf("GetTrace: %v", err)
	}
	if want := spanKeys(batch(specs...)); !slices.Equal(spanKeys(got), want) {
		t.Fatalf("GetTrace\n got %v\nwant %v", spanKeys(got), want)
	}
	svcs, err := s.GetServices(context.Background())
	if err != nil {
		t.Fatalf("GetServices: %v", err)
	}
	if want := []string{"fraud", "gateway", "notify", "orders", "payments"}; !slices.Equal(svcs, want) {
		t.Fatalf("GetServices = %v, want %v", svcs, want)
	}
	// Every service finds the trace; the root's service and the late span's too.
	for _, svc := range []string{"gateway", "fraud", "notify"} {
		ids, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: svc})
		if err != nil {
			t.Fatalf("FindTraceIDs: %v", err)
		}
		if len(ids) != 1 || ids[0] != id {
			t.Fatalf("FindTraceIDs(service=%s) = %v, want [%v]", svc, idStrings(ids), idStrings([]pcommon.TraceID{id}))
		}
	}
}

func testServicesAndOperations(t *testing.T, open Opener) {
	s := openFresh(t, open)
	svcs, err := s.GetServices(context.Background())
	if err != nil || svcs == nil || len(svcs) != 0 {
		t.Fatalf("GetServices on empty store = %#v, %v; want [] and nil", svcs, err)
	}
	ops, err := s.GetOperations(context.Background(), storage.OperationQuery{ServiceName: "nope"})
	if err != nil || ops == nil || len(ops) != 0 {
		t.Fatalf("GetOperations on empty store = %#v, %v; want [] and nil", ops, err)
	}
	now := time.Now().Add(-time.Minute)
	id := traceID(6)
	mustWrite(t, s, batch(
		spanSpec{trace: id, id: 1, service: "b-svc", name: "zeta", kind: ptrace.SpanKindServer, start: now},
		spanSpec{trace: id, id: 2, service: "b-svc", name: "alpha", kind: ptrace.SpanKindClient, start: now},
		spanSpec{trace: id, id: 3, service: "b-svc", name: "alpha", kind: ptrace.SpanKindServer, start: now},
		spanSpec{trace: id, id: 4, service: "a-svc", name: "mid", kind: ptrace.SpanKindInternal, start: now},
		spanSpec{trace: id, id: 5, service: "a-svc", name: "raw", kind: ptrace.SpanKindUnspecified, start: now},
	))
	svcs, err = s.GetServices(context.Background())
	if err != nil {
		t.Fatalf("GetServices: %v", err)
	}
	if want := []string{"a-svc", "b-svc"}; !slices.Equal(svcs, want) {
		t.Fatalf("GetServices = %v, want %v", svcs, want)
	}
	for _, c := range []struct {
		q    storage.OperationQuery
		want []storage.Operation
	}{
		{storage.OperationQuery{ServiceName: "b-svc"}, []storage.Operation{op("alpha", "client"), op("alpha", "server"), op("zeta", "server")}},
		{storage.OperationQuery{ServiceName: "b-svc", SpanKind: "server"}, []storage.Operation{op("alpha", "server"), op("zeta", "server")}},
		{storage.OperationQuery{ServiceName: "b-svc", SpanKind: "consumer"}, []storage.Operation{}},
		{storage.OperationQuery{ServiceName: "a-svc"}, []storage.Operation{op("mid", "internal"), op("raw", "unspecified")}},
		{storage.OperationQuery{ServiceName: "a-svc", SpanKind: "unspecified"}, []storage.Operation{op("raw", "unspecified")}},
	} {
		got, err := s.GetOperations(context.Background(), c.q)
		if err != nil {
			t.Fatalf("GetOperations(%+v): %v", c.q, err)
		}
		if got == nil || !slices.Equal(got, c.want) {
			t.Fatalf("GetOperations(%+v) = %#v, want %#v", c.q, got, c.want)
		}
	}
}

func testNewestFirstAndLimit(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var specs []spanSpec
	for i := range 10 {
		specs = append(specs, spanSpec{trace: traceID(uint64(100 + i)), id: 1, service: "order-svc", name: "op",
			start: base.Add(time.Duration(i) * 20 * time.Minute), duration: time.Millisecond})
	}
	// Two traces with the same start: trace ID breaks the tie.
	specs = append(specs, spanSpec{trace: traceID(99), id: 1, service: "order-svc", name: "op",
		start: base.Add(9 * 20 * time.Minute), duration: time.Millisecond})
	// Written in one batch and in shuffled order, so insertion order cannot explain the result.
	mustWrite(t, s, batch(specs[3], specs[10], specs[7], specs[0], specs[9], specs[1], specs[5], specs[2], specs[8], specs[6], specs[4]))

	want := []pcommon.TraceID{traceID(99), traceID(109), traceID(108), traceID(107), traceID(106), traceID(105),
		traceID(104), traceID(103), traceID(102), traceID(101), traceID(100)}
	for _, limit := range []int{1, 3, 11, 0} {
		got, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: "order-svc", Limit: limit})
		if err != nil {
			t.Fatalf("FindTraceIDs: %v", err)
		}
		n := limit
		if n == 0 || n > len(want) {
			n = len(want)
		}
		if !slices.Equal(got, want[:n]) {
			t.Fatalf("limit %d: got %v, want %v", limit, idStrings(got), idStrings(want[:n]))
		}
	}
	// The same order with no service (the "every trace" index) and through FindTraces.
	traces, err := s.FindTraces(context.Background(), storage.TraceQuery{Limit: 4})
	if err != nil {
		t.Fatalf("FindTraces: %v", err)
	}
	if len(traces) != 4 {
		t.Fatalf("FindTraces returned %d traces, want 4", len(traces))
	}
	for i, td := range traces {
		if got := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID(); got != want[i] {
			t.Fatalf("FindTraces[%d] = %v, want %v", i, idStrings([]pcommon.TraceID{got}), idStrings(want[i:i+1]))
		}
	}
}

func op(name, kind string) storage.Operation { return storage.Operation{Name: name, SpanKind: kind} }

func testTimeRangeAndDuration(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-5 * time.Hour).Truncate(time.Second)
	var specs []spanSpec
	for i := range 6 {
		// Trace 200+i starts at base+i hours and has a child lasting i+1 ms.
		start := base.Add(time.Duration(i) * time.Hour)
		specs = append(specs,
			spanSpec{trace: traceID(uint64(200 + i)), id: 1, service: "range-svc", name: "root", start: start, duration: time.Second},
			spanSpec{trace: traceID(uint64(200 + i)), id: 2, parent: 1, service: "range-svc", name: "child", start: start.Add(time.Millisecond),
				duration: time.Duration(i+1) * time.Millisecond, attrs: map[string]string{"step": fmt.Sprint(i)}})
	}
	mustWrite(t, s, batch(specs...))
	ids := func(ns ...int) []pcommon.TraceID {
		out := []pcommon.TraceID{}
		for _, n := range ns {
			out = append(out, traceID(uint64(200+n)))
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    storage.TraceQuery
		want []pcommon.TraceID
	}{
		{"window", storage.TraceQuery{ServiceName: "range-svc", StartTimeMin: base.Add(90 * time.Minute), StartTimeMax: base.Add(210 * time.Minute)}, ids(3, 2)},
		{"window edges inclusive", storage.TraceQuery{StartTimeMin: base.Add(time.Hour), StartTimeMax: base.Add(2 * time.Hour)}, ids(2, 1)},
		{"child start inside, root outside", storage.TraceQuery{OperationName: "child", StartTimeMin: base.Add(time.Millisecond), StartTimeMax: base.Add(time.Millisecond)}, ids(0)},
		{"min only", storage.TraceQuery{ServiceName: "range-svc", StartTimeMin: base.Add(4 * time.Hour)}, ids(5, 4)},
		{"duration range", storage.TraceQuery{ServiceName: "range-svc", DurationMin: 2 * time.Millisecond, DurationMax: 4 * time.Millisecond}, ids(3, 2, 1)},
		{"duration max", storage.TraceQuery{ServiceName: "range-svc", OperationName: "child", DurationMax: 1 * time.Millisecond}, ids(0)},
		{"duration min", storage.TraceQuery{DurationMin: 500 * time.Millisecond}, ids(5, 4, 3, 2, 1, 0)},
		{"one span must match everything", storage.TraceQuery{OperationName: "root", Attributes: map[string]string{"step": "1"}}, ids()},
		{"attribute only", storage.TraceQuery{Attributes: map[string]string{"step": "4"}}, ids(4)},
		{"attribute and duration", storage.TraceQuery{Attributes: map[string]string{"step": "4"}, DurationMax: time.Millisecond}, ids()},
		{"unknown service", storage.TraceQuery{ServiceName: "nobody"}, ids()},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.FindTraceIDs(context.Background(), c.q)
			if err != nil {
				t.Fatalf("FindTraceIDs: %v", err)
			}
			if got == nil || !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", idStrings(got), idStrings(c.want))
			}
		})
	}
	_, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{StartTimeMin: base, StartTimeMax: base.Add(-time.Second)})
	if !storage.IsInvalidInput(err) {
		t.Fatalf("max before min: err = %v, want invalid input", err)
	}
}

func testNotFound(t *testing.T, open Opener) {
	s := openFresh(t, open)
	mustWrite(t, s, batch(spanSpec{trace: traceID(7), id: 1, service: "x", name: "y", start: time.Now()}))
	_, err := s.GetTrace(context.Background(), traceID(8))
	if !errors.Is(err, storage.ErrTraceNotFound) {
		t.Fatalf("GetTrace(missing) err = %v, want ErrTraceNotFound", err)
	}
}

func testRestart(t *testing.T, open Opener) {
	dir := t.TempDir()
	s := open(t, dir)
	now := time.Now().Add(-time.Minute)
	id := traceID(9)
	in := batch(
		spanSpec{trace: id, id: 1, service: "restart-a", name: "root", kind: ptrace.SpanKindServer, start: now, duration: time.Second},
		spanSpec{trace: id, id: 2, parent: 1, service: "restart-b", name: "call", kind: ptrace.SpanKindClient, start: now, duration: time.Millisecond,
			attrs: map[string]string{"k": "v"}},
	)
	mustWrite(t, s, in)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dir)
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	got, err := s.GetTrace(context.Background(), id)
	if err != nil {
		t.Fatalf("GetTrace after restart: %v", err)
	}
	if !slices.Equal(spanKeys(got), spanKeys(in)) {
		t.Fatalf("after restart\n got %v\nwant %v", spanKeys(got), spanKeys(in))
	}
	svcs, err := s.GetServices(context.Background())
	if err != nil || !slices.Equal(svcs, []string{"restart-a", "restart-b"}) {
		t.Fatalf("GetServices after restart = %v, %v", svcs, err)
	}
	ops, err := s.GetOperations(context.Background(), storage.OperationQuery{ServiceName: "restart-b"})
	if err != nil || !slices.Equal(ops, []storage.Operation{{Name: "call", SpanKind: "client"}}) {
		t.Fatalf("GetOperations after restart = %v, %v", ops, err)
	}
	ids, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{Attributes: map[string]string{"k": "v"}})
	if err != nil || !slices.Equal(ids, []pcommon.TraceID{id}) {
		t.Fatalf("FindTraceIDs after restart = %v, %v", idStrings(ids), err)
	}
	// Writing again after a restart merges into the same trace.
	mustWrite(t, s, batch(spanSpec{trace: id, id: 3, parent: 1, service: "restart-c", name: "late", start: now, duration: time.Millisecond}))
	got, err = s.GetTrace(context.Background(), id)
	if err != nil || got.SpanCount() != 3 {
		t.Fatalf("GetTrace after restart and write: %d spans, %v", got.SpanCount(), err)
	}
}

func testInvalidInput(t *testing.T, open Opener) {
	s := openFresh(t, open)
	now := time.Now()
	good := traceID(10)
	td := batch(
		spanSpec{trace: good, id: 1, service: "invalid-svc", name: "ok", start: now},
		spanSpec{trace: pcommon.NewTraceIDEmpty(), id: 2, service: "invalid-svc", name: "bad", start: now},
	)
	err := s.WriteTraces(context.Background(), td)
	if !storage.IsInvalidInput(err) {
		t.Fatalf("all-zero trace ID: err = %v, want invalid input", err)
	}
	if _, err := s.GetTrace(context.Background(), good); !errors.Is(err, storage.ErrTraceNotFound) {
		t.Fatalf("the valid trace of a rejected batch was stored (err = %v)", err)
	}
	if svcs, err := s.GetServices(context.Background()); err != nil || len(svcs) != 0 {
		t.Fatalf("a rejected batch left services %v (%v)", svcs, err)
	}
	if ids, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{}); err != nil || len(ids) != 0 {
		t.Fatalf("a rejected batch left searchable traces %v (%v)", idStrings(ids), err)
	}
	err = s.WriteTraces(context.Background(), batch(spanSpec{trace: good, id: 0, service: "invalid-svc", name: "zero span", start: now}))
	if !storage.IsInvalidInput(err) {
		t.Fatalf("all-zero span ID: err = %v, want invalid input", err)
	}
}

// testConcurrency writes batches of 4 spans of a few shared traces from several
// goroutines while others read them: a reader must only ever see whole batches.
func testConcurrency(t *testing.T, open Opener) {
	s := openFresh(t, open)
	const writers, batches, perBatch, traces = 4, 15, 4, 3
	now := time.Now().Add(-time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var specs []spanSpec
				for tr := range traces {
					for k := range perBatch {
						specs = append(specs, spanSpec{trace: traceID(uint64(300 + tr)), id: uint64(w*10000 + b*100 + k + 1),
							service: fmt.Sprintf("conc-%d", w), name: "op", start: now.Add(time.Duration(b) * time.Millisecond), duration: time.Millisecond})
					}
				}
				if err := s.WriteTraces(context.Background(), batch(specs...)); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				td, err := s.GetTrace(context.Background(), traceID(uint64(300+r)))
				if err != nil && !errors.Is(err, storage.ErrTraceNotFound) {
					errs <- fmt.Errorf("reader: %w", err)
					return
				}
				if err == nil && td.SpanCount()%perBatch != 0 {
					errs <- fmt.Errorf("reader saw %d spans, not a whole number of %d-span batches", td.SpanCount(), perBatch)
					return
				}
				if _, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: "conc-1", Limit: 2}); err != nil {
					errs <- fmt.Errorf("search: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for tr := range traces {
		td, err := s.GetTrace(context.Background(), traceID(uint64(300+tr)))
		if err != nil {
			t.Fatalf("GetTrace: %v", err)
		}
		if n := td.SpanCount(); n != writers*batches*perBatch {
			t.Fatalf("trace %d has %d spans, want %d", tr, n, writers*batches*perBatch)
		}
	}
	ids, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: "conc-2"})
	if err != nil || len(ids) != traces {
		t.Fatalf("FindTraceIDs after concurrent writes = %v, %v", idStrings(ids), err)
	}
}

// testSharedBatches interleaves matching and non-matching traces in the same batches,
// so that a store keeping batches together (one block and one index posting per batch)
// must still return exactly the matching traces, newest first, at every limit.
func testSharedBatches(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	var batches [3][]spanSpec
	add := func(b int, n uint64, start time.Time, pick string) {
		id := traceID(n)
		batches[b] = append(batches[b],
			spanSpec{trace: id, id: 1, service: "blocks-svc", name: "root", kind: ptrace.SpanKindServer, start: start, duration: time.Second},
			// The child, which carries the searched attribute, starts 30 minutes after
			// its root: trace order (by earliest start) differs from span order.
			spanSpec{trace: id, id: 2, parent: 1, service: "blocks-svc", name: "child", kind: ptrace.SpanKindClient,
				start: start.Add(30 * time.Minute), duration: time.Millisecond, attrs: map[string]string{"pick": pick}})
	}
	var matching []uint64
	for n := uint64(0); n < 18; n++ {
		pick := "no"
		if n%4 == 1 {
			pick = "yes"
			matching = append(matching, n)
		}
		add(int(n%3), 1000+n, base.Add(time.Duration(n)*time.Minute), pick)
	}
	// A matching trace in another batch starting exactly when trace 1013 starts: the
	// tie goes to the lower trace ID (1013).
	add(2, 2000, base.Add(13*time.Minute), "yes")
	for _, b := range batches {
		mustWrite(t, s, batch(b...))
	}
	want := []pcommon.TraceID{traceID(1017), traceID(1013), traceID(2000), traceID(1009), traceID(1005), traceID(1001)}
	if len(matching) != 5 {
		t.Fatalf("BUG: %d matching traces", len(matching))
	}
	queries := []storage.TraceQuery{
		{Attributes: map[string]string{"pick": "yes"}},
		{ServiceName: "blocks-svc", Attributes: map[string]string{"pick": "yes"}},
		{ServiceName: "blocks-svc", OperationName: "child", Attributes: map[string]string{"pick": "yes"}},
	}
	for qi, q := range queries {
		for _, limit := range []int{1, 2, 3, 0} {
			q.Limit = limit
			got, err := s.FindTraceIDs(context.Background(), q)
			if err != nil {
				t.Fatalf("query %d limit %d: FindTraceIDs: %v", qi, limit, err)
			}
			n := limit
			if n == 0 {
				n = len(want)
			}
			if !slices.Equal(got, want[:n]) {
				t.Fatalf("query %d limit %d: got %v, want %v", qi, limit, idStrings(got), idStrings(want[:n]))
			}
		}
	}
	// The non-matching traces of the same batches are still found by their own value.
	got, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{Attributes: map[string]string{"pick": "no"}, Limit: 2})
	if err != nil || !slices.Equal(got, []pcommon.TraceID{traceID(1016), traceID(1015)}) {
		t.Fatalf("pick=no limit 2: got %v, %v; want [1016 1015]", idStrings(got), err)
	}
	// A window that holds only the children of traces 1008..1012 (starts 38..42 min).
	got, err = s.FindTraceIDs(context.Background(), storage.TraceQuery{Attributes: map[string]string{"pick": "yes"},
		StartTimeMin: base.Add(38 * time.Minute), StartTimeMax: base.Add(42 * time.Minute)})
	if err != nil || !slices.Equal(got, []pcommon.TraceID{traceID(1009)}) {
		t.Fatalf("window: got %v, %v; want [1009]", idStrings(got), err)
	}
	// FindTraces returns each matching trace whole, and only its own spans.
	traces, err := s.FindTraces(context.Background(), storage.TraceQuery{Attributes: map[string]string{"pick": "yes"}, Limit: 3})
	if err != nil || len(traces) != 3 {
		t.Fatalf("FindTraces: %d traces, %v; want 3", len(traces), err)
	}
	for i, td := range traces {
		if td.SpanCount() != 2 {
			t.Fatalf("FindTraces[%d] has %d spans, want 2: %v", i, td.SpanCount(), spanKeys(td))
		}
		rss := td.ResourceSpans()
		for j := 0; j < rss.Len(); j++ {
			if id := rss.At(j).ScopeSpans().At(0).Spans().At(0).TraceID(); id != want[i] {
				t.Fatalf("FindTraces[%d] holds a span of trace %v, want only %v", i, idStrings([]pcommon.TraceID{id}), idStrings(want[i:i+1]))
			}
		}
	}
}

// testTraceInThreeBatches spreads one trace over three batches that also carry other
// traces, and retries two of them (one identically, one re-shaped).
func testTraceInThreeBatches(t *testing.T, open Opener) {
	s := openFresh(t, open)
	id := traceID(3000)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	mine := []spanSpec{
		{trace: id, id: 1, service: "three-a", name: "root", kind: ptrace.SpanKindServer, start: base, duration: 3 * time.Hour},
		{trace: id, id: 2, parent: 1, service: "three-a", name: "db", kind: ptrace.SpanKindClient, start: base.Add(time.Millisecond), duration: time.Millisecond},
		{trace: id, id: 3, parent: 1, service: "three-b", name: "work", kind: ptrace.SpanKindServer, start: base.Add(time.Second), duration: time.Second},
		{trace: id, id: 4, parent: 3, service: "three-b", name: "cache", kind: ptrace.SpanKindClient, start: base.Add(2 * time.Second), duration: time.Millisecond},
		// Two hours later, in another time bucket.
		{trace: id, id: 5, parent: 1, service: "three-c", name: "late", kind: ptrace.SpanKindConsumer, start: base.Add(2 * time.Hour), duration: time.Millisecond},
	}
	other := func(n uint64, start time.Time) spanSpec {
		return spanSpec{trace: traceID(n), id: 1, service: "three-other", name: "noise", start: start, duration: time.Millisecond}
	}
	b1 := batch(other(3001, base), mine[0], other(3002, base), mine[1])
	b2 := batch(mine[2], other(3003, base.Add(time.Second)), mine[3])
	b3 := batch(other(3004, base.Add(2*time.Hour)), mine[4])
	mustWrite(t, s, b1)
	mustWrite(t, s, b2)
	mustWrite(t, s, b3)
	mustWrite(t, s, b2)                                // identical retry
	mustWrite(t, s, batch(mine[1], other(3005, base))) // re-shaped retry of one span
	got, err := s.GetTrace(context.Background(), id)
	if err != nil {
		t.Fatalf("GetTrace: %v", err)
	}
	if want := spanKeys(batch(mine...)); !slices.Equal(spanKeys(got), want) {
		t.Fatalf("GetTrace\n got %v\nwant %v", spanKeys(got), want)
	}
	for _, n := range []uint64{3001, 3003, 3004, 3005} {
		td, err := s.GetTrace(context.Background(), traceID(n))
		if err != nil || td.SpanCount() != 1 {
			t.Fatalf("GetTrace(other %d): %d spans, %v; want 1", n, td.SpanCount(), err)
		}
	}
	ids, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: "three-c"})
	if err != nil || !slices.Equal(ids, []pcommon.TraceID{id}) {
		t.Fatalf("FindTraceIDs(three-c) = %v, %v", idStrings(ids), err)
	}
}
