package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// ids makes trace IDs from numbers, in the given order; never nil.
func ids(ns ...uint64) []pcommon.TraceID {
	out := []pcommon.TraceID{}
	for _, n := range ns {
		out = append(out, traceID(n))
	}
	return out
}

// expectIDs runs q through FindTraceIDs and through SearchTraces (whose summaries must
// name the same traces) and compares both with want.
func expectIDs(t *testing.T, s Store, caption string, q storage.TraceQuery, want []pcommon.TraceID) {
	t.Helper()
	got, err := s.FindTraceIDs(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: FindTraceIDs: %v", caption, err)
	}
	if got == nil || !slices.Equal(got, want) {
		t.Fatalf("%s: FindTraceIDs = %v, want %v", caption, idStrings(got), idStrings(want))
	}
	res, err := s.SearchTraces(context.Background(), q, storage.SummariesOnly)
	if err != nil {
		t.Fatalf("%s: SearchTraces: %v", caption, err)
	}
	if !slices.Equal(summaryIDs(res.Summaries), want) {
		t.Fatalf("%s: SearchTraces = %v, want %v", caption, idStrings(summaryIDs(res.Summaries)), idStrings(want))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = storage.DefaultLimit
	}
	if q.Cursor == "" && len(want) < limit {
		checkEstimate(t, s, q, len(want)) // want is every match, not a page of them
	}
}

func summaryIDs(sums []storage.TraceSummary) []pcommon.TraceID {
	out := []pcommon.TraceID{}
	for _, s := range sums {
		out = append(out, s.TraceID)
	}
	return out
}

// pageAll follows the cursor from the first page to the last, calling between (when not
// nil) after each page, and returns every page's IDs in order.
func pageAll(t *testing.T, s Store, q storage.TraceQuery, between func(page int)) []pcommon.TraceID {
	t.Helper()
	var all []pcommon.TraceID
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatalf("more than 100 pages: the cursor does not advance")
		}
		res, err := s.SearchTraces(context.Background(), q, storage.SummariesOnly)
		if err != nil {
			t.Fatalf("page %d: SearchTraces: %v", page, err)
		}
		if len(res.Summaries) > q.Limit {
			t.Fatalf("page %d has %d traces, limit %d", page, len(res.Summaries), q.Limit)
		}
		if (len(res.Summaries) == q.Limit) != (res.NextCursor != "") {
			t.Fatalf("page %d: %d traces (limit %d) but NextCursor %q", page, len(res.Summaries), q.Limit, res.NextCursor)
		}
		all = append(all, summaryIDs(res.Summaries)...)
		if res.NextCursor == "" {
			return all
		}
		if between != nil {
			between(page)
		}
		q.Cursor = res.NextCursor
	}
}

// testTraceDuration: trace duration is the trace's extent, not any span's duration.
func testTraceDuration(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	mustWrite(t, s, batch(
		// 4001: one long span (span and trace duration 2 s).
		spanSpec{trace: traceID(4001), id: 1, service: "td-svc", name: "long", start: base, duration: 2 * time.Second},
		// 4002: two 10 ms spans 2 s apart: trace duration 2.01 s, no long span.
		spanSpec{trace: traceID(4002), id: 1, service: "td-svc", name: "a", start: base.Add(time.Minute), duration: 10 * time.Millisecond},
		spanSpec{trace: traceID(4002), id: 2, parent: 1, service: "td-other", name: "b", start: base.Add(time.Minute + 2*time.Second), duration: 10 * time.Millisecond},
		// 4003: one short span.
		spanSpec{trace: traceID(4003), id: 1, service: "td-svc", name: "short", start: base.Add(2 * time.Minute), duration: 10 * time.Millisecond},
	))
	for _, c := range []struct {
		caption string
		q       storage.TraceQuery
		want    []pcommon.TraceID
	}{
		{"trace duration min", storage.TraceQuery{TraceDurationMin: time.Second}, ids(4002, 4001)},
		{"span duration min", storage.TraceQuery{DurationMin: time.Second}, ids(4001)},
		{"trace duration max", storage.TraceQuery{TraceDurationMax: 100 * time.Millisecond}, ids(4003)},
		{"long trace of short spans", storage.TraceQuery{TraceDurationMin: time.Second, DurationMax: 50 * time.Millisecond}, ids(4002)},
		{"trace duration range, by service", storage.TraceQuery{ServiceName: "td-svc", TraceDurationMin: 2 * time.Second, TraceDurationMax: 2010 * time.Millisecond}, ids(4002, 4001)},
		{"exact bounds inclusive", storage.TraceQuery{TraceDurationMin: 2010 * time.Millisecond, TraceDurationMax: 2010 * time.Millisecond}, ids(4002)},
		{"found by a service that is not the root's", storage.TraceQuery{ServiceName: "td-other", TraceDurationMin: time.Second}, ids(4002)},
		{"with a window", storage.TraceQuery{TraceDurationMin: time.Second, StartTimeMin: base.Add(30 * time.Second)}, ids(4002)},
	} {
		expectIDs(t, s, c.caption, c.q, c.want)
	}
	for _, q := range []storage.TraceQuery{{TraceDurationMin: -1}, {TraceDurationMin: time.Second, TraceDurationMax: time.Millisecond}} {
		if _, err := s.FindTraceIDs(context.Background(), q); !storage.IsInvalidInput(err) {
			t.Fatalf("%+v: err = %v, want invalid input", q, err)
		}
	}
}

// testErrors: ErrorsOnly is span-level (the span that satisfies the other conditions
// failed), TraceErrorsOnly trace-level (any span failed).
func testErrors(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	mustWrite(t, s, batch(
		// 5001: the gateway succeeds, payments fails.
		spanSpec{trace: traceID(5001), id: 1, service: "err-gateway", name: "POST /checkout", start: base, duration: time.Second},
		spanSpec{trace: traceID(5001), id: 2, parent: 1, service: "err-payments", name: "charge", start: base.Add(time.Millisecond), duration: time.Millisecond, isError: true},
		// 5002: the gateway itself fails, payments succeeds.
		spanSpec{trace: traceID(5002), id: 1, service: "err-gateway", name: "POST /checkout", start: base.Add(time.Minute), duration: time.Second, isError: true},
		spanSpec{trace: traceID(5002), id: 2, parent: 1, service: "err-payments", name: "charge", start: base.Add(time.Minute + time.Millisecond), duration: time.Millisecond},
		// 5003: nothing fails.
		spanSpec{trace: traceID(5003), id: 1, service: "err-gateway", name: "POST /checkout", start: base.Add(2 * time.Minute), duration: time.Second},
	))
	for _, c := range []struct {
		caption string
		q       storage.TraceQuery
		want    []pcommon.TraceID
	}{
		{"errors only: traces with an error span", storage.TraceQuery{ErrorsOnly: true}, ids(5002, 5001)},
		{"trace errors only: the same without other conditions", storage.TraceQuery{TraceErrorsOnly: true}, ids(5002, 5001)},
		{"span-level: a payments span failed", storage.TraceQuery{ServiceName: "err-payments", ErrorsOnly: true}, ids(5001)},
		{"span-level: a gateway span failed", storage.TraceQuery{ServiceName: "err-gateway", ErrorsOnly: true}, ids(5002)},
		{"trace-level: payments took part, something failed", storage.TraceQuery{ServiceName: "err-payments", TraceErrorsOnly: true}, ids(5002, 5001)},
		{"span-level with operation", storage.TraceQuery{ServiceName: "err-gateway", OperationName: "POST /checkout", ErrorsOnly: true}, ids(5002)},
		{"span-level with a window holding only 5002's ok payments span", storage.TraceQuery{ErrorsOnly: true,
			StartTimeMin: base.Add(time.Minute + time.Millisecond), StartTimeMax: base.Add(time.Minute + time.Millisecond)}, ids()},
		{"span-level with a window holding 5001's error span", storage.TraceQuery{ErrorsOnly: true, StartTimeMin: base.Add(time.Millisecond),
			StartTimeMax: base.Add(time.Minute - time.Millisecond)}, ids(5001)},
		{"span-level and span duration", storage.TraceQuery{ErrorsOnly: true, DurationMin: 500 * time.Millisecond}, ids(5002)},
	} {
		expectIDs(t, s, c.caption, c.q, c.want)
	}
}

// testStatus: Status is span-level like ErrorsOnly, for each of the three OTLP status
// codes, with the other span conditions on the same span.
func testStatus(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	at := func(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }
	gold := map[string]string{"tier": "gold"}
	mustWrite(t, s, batch(
		// 7001: the gateway's span ok (gold), the database's unset.
		spanSpec{trace: traceID(7001), id: 1, service: "st-gw", name: "GET /a", start: at(1), duration: time.Second, isOK: true, attrs: gold},
		spanSpec{trace: traceID(7001), id: 2, parent: 1, service: "st-db", name: "query", start: at(1).Add(time.Millisecond), duration: time.Millisecond},
		// 7002: the gateway's unset (gold), the database's failed.
		spanSpec{trace: traceID(7002), id: 1, service: "st-gw", name: "GET /a", start: at(2), duration: time.Second, attrs: gold},
		spanSpec{trace: traceID(7002), id: 2, parent: 1, service: "st-db", name: "query", start: at(2).Add(time.Millisecond), duration: time.Millisecond, isError: true},
		// 7003: the gateway's failed, the database's ok.
		spanSpec{trace: traceID(7003), id: 1, service: "st-gw", name: "GET /b", start: at(3), duration: time.Second, isError: true},
		spanSpec{trace: traceID(7003), id: 2, parent: 1, service: "st-db", name: "query", start: at(3).Add(time.Millisecond), duration: time.Millisecond, isOK: true},
	))
	// 7004: everything failed, in a batch of its own.
	mustWrite(t, s, batch(
		spanSpec{trace: traceID(7004), id: 1, service: "st-gw", name: "GET /b", start: at(4), duration: time.Second, isError: true},
		spanSpec{trace: traceID(7004), id: 2, parent: 1, service: "st-db", name: "query", start: at(4).Add(time.Millisecond), duration: time.Millisecond, isError: true},
	))
	for _, c := range []struct {
		caption string
		q       storage.TraceQuery
		want    []pcommon.TraceID
	}{
		{"ok", storage.TraceQuery{Status: storage.StatusOK}, ids(7003, 7001)},
		{"unset", storage.TraceQuery{Status: storage.StatusUnset}, ids(7002, 7001)},
		{"error, as ErrorsOnly", storage.TraceQuery{Status: storage.StatusError}, ids(7004, 7003, 7002)},
		{"ok span of the gateway", storage.TraceQuery{ServiceName: "st-gw", Status: storage.StatusOK}, ids(7001)},
		{"ok span of the database", storage.TraceQuery{ServiceName: "st-db", Status: storage.StatusOK}, ids(7003)},
		{"unset span of the gateway", storage.TraceQuery{ServiceName: "st-gw", Status: storage.StatusUnset}, ids(7002)},
		{"unset span of the database", storage.TraceQuery{ServiceName: "st-db", Status: storage.StatusUnset}, ids(7001)},
		{"error span of the database", storage.TraceQuery{ServiceName: "st-db", Status: storage.StatusError}, ids(7004, 7002)},
		{"ok, with an operation no ok span has", storage.TraceQuery{ServiceName: "st-gw", OperationName: "GET /b", Status: storage.StatusOK}, ids()},
		{"ok and gold on one span", storage.TraceQuery{Status: storage.StatusOK, Attributes: gold}, ids(7001)},
		{"unset and gold on one span", storage.TraceQuery{Status: storage.StatusUnset, Attributes: gold}, ids(7002)},
		{"ok and not gold", storage.TraceQuery{Status: storage.StatusOK, AttributeFilters: []storage.AttributeFilter{{Key: "tier", Values: []string{"gold"}, Negate: true}}}, ids(7003)},
		{"an ok span in a trace that failed", storage.TraceQuery{Status: storage.StatusOK, TraceErrorsOnly: true}, ids(7003)},
		{"unset, in a window holding 7002's spans", storage.TraceQuery{Status: storage.StatusUnset, StartTimeMin: at(2), StartTimeMax: at(2).Add(time.Second)}, ids(7002)},
		{"ok, in a window holding only 7001's unset span", storage.TraceQuery{Status: storage.StatusOK, StartTimeMin: at(1).Add(time.Millisecond), StartTimeMax: at(1).Add(time.Millisecond)}, ids()},
		{"unset and span duration", storage.TraceQuery{Status: storage.StatusUnset, DurationMin: 500 * time.Millisecond}, ids(7002)},
		{"ok, a page of one", storage.TraceQuery{Status: storage.StatusOK, Limit: 1}, ids(7003)},
	} {
		expectIDs(t, s, c.caption, c.q, c.want)
	}
	if got := pageAll(t, s, storage.TraceQuery{Status: storage.StatusUnset, Limit: 1}, nil); !slices.Equal(got, ids(7002, 7001)) {
		t.Fatalf("unset, paged: %v", idStrings(got))
	}
	for _, q := range []storage.TraceQuery{{ErrorsOnly: true, Status: storage.StatusOK}, {Status: storage.StatusUnset + 1}} {
		if _, err := s.FindTraceIDs(context.Background(), q); !storage.IsInvalidInput(err) {
			t.Fatalf("%+v: err = %v, want invalid input", q, err)
		}
	}
}

// testScanLimit: a search whose ScanLimit cuts pages short still returns, page after
// page, exactly the matches of the unbounded search, newest first, each once.
func testScanLimit(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var specs []spanSpec
	for i := 1; i <= 24; i++ {
		at := base.Add(time.Duration(i) * time.Minute)
		specs = append(specs,
			spanSpec{trace: traceID(uint64(7100 + i)), id: 1, service: "sl-gw", name: "GET /", start: at, duration: time.Duration(i) * time.Millisecond},
			spanSpec{trace: traceID(uint64(7100 + i)), id: 2, parent: 1, service: "sl-db", name: "query", start: at.Add(time.Millisecond), duration: time.Millisecond, isOK: i%5 == 0})
		if i%8 == 0 { // several batches, so that postings and blocks differ
			mustWrite(t, s, batch(specs...))
			specs = nil
		}
	}
	for qi, q := range []storage.TraceQuery{
		// Sparse: 4 matches in 3 batches; the span duration (every ok span's) is decided
		// only by reading spans, as an unindexed status would be.
		{Status: storage.StatusOK, DurationMin: time.Microsecond},
		{Status: storage.StatusOK},
		{ServiceName: "sl-db", Status: storage.StatusUnset},
		{ServiceName: "sl-gw", DurationMin: 20 * time.Millisecond},
		{Status: storage.StatusOK, StartTimeMin: base.Add(6 * time.Minute), StartTimeMax: base.Add(16 * time.Minute)},
	} {
		q.Limit = 1000
		want, err := s.FindTraceIDs(context.Background(), q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if len(want) == 0 {
			t.Fatalf("%+v: the fixture has no match", q)
		}
		for _, limit := range []int{1, 2, 5} {
			for _, scan := range []int{1, 2, 3} {
				q.Limit, q.ScanLimit, q.Cursor = limit, scan, ""
				var got []pcommon.TraceID
				pages := 0
				for ; pages < 200; pages++ {
					res, err := s.SearchTraces(context.Background(), q, storage.SummariesOnly)
					if err != nil {
						t.Fatalf("%+v page %d: %v", q, pages, err)
					}
					if len(res.Summaries) > limit {
						t.Fatalf("%+v page %d: %d traces", q, pages, len(res.Summaries))
					}
					got = append(got, summaryIDs(res.Summaries)...)
					if res.NextCursor == "" {
						break
					}
					q.Cursor = res.NextCursor
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%+v: paged with scan limit %d: %v, want %v", q, scan, idStrings(got), idStrings(want))
				}
				if qi == 0 && scan == 1 && limit == 5 && pages+1 <= (len(want)+limit-1)/limit {
					t.Fatalf("%+v: %d pages for %d matches: the scan limit cut no page short", q, pages+1, len(want))
				}
			}
		}
	}
}

// testAttributeFilters: OR over values, regular expressions, NOT (absent or none of the
// values), presence, all on one span, in span, resource, event and link attributes.
func testAttributeFilters(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	sp := func(n uint64, i int, attrs map[string]string) spanSpec {
		return spanSpec{trace: traceID(n), id: 1, service: "attr-svc", name: "op", start: base.Add(time.Duration(i) * time.Minute),
			duration: time.Millisecond, attrs: attrs}
	}
	td := batch(
		sp(6001, 1, map[string]string{"http.status": "200", "region": "eu"}),
		sp(6002, 2, nil), // status set below as an int: 500
		sp(6003, 3, map[string]string{"http.status": "503", "region": "us"}),
		sp(6004, 4, map[string]string{"region": "us"}), // no status at all
		sp(6005, 5, map[string]string{"region": "eu"}), // status 500 on its resource
		// 6006: one span has the status, another the region: no single span has both.
		spanSpec{trace: traceID(6006), id: 1, service: "attr-svc", name: "op", start: base.Add(6 * time.Minute), duration: time.Millisecond,
			attrs: map[string]string{"http.status": "500"}},
		spanSpec{trace: traceID(6006), id: 2, parent: 1, service: "attr-svc", name: "op", start: base.Add(6 * time.Minute), duration: time.Millisecond,
			attrs: map[string]string{"region": "ap"}},
		sp(6007, 7, nil), // status 404 in an event, region in a link
	)
	rss := td.ResourceSpans()
	rss.At(1).ScopeSpans().At(0).Spans().At(0).Attributes().PutInt("http.status", 500)
	rss.At(4).Resource().Attributes().PutStr("http.status", "500")
	s7 := rss.At(7).ScopeSpans().At(0).Spans().At(0)
	s7.Events().AppendEmpty().Attributes().PutStr("http.status", "404")
	s7.Links().AppendEmpty().Attributes().PutStr("region", "sa")
	mustWrite(t, s, td)

	status := func(negate bool, vs ...string) storage.AttributeFilter {
		return storage.AttributeFilter{Key: "http.status", Values: vs, Negate: negate}
	}
	region := func(negate bool, vs ...string) storage.AttributeFilter {
		return storage.AttributeFilter{Key: "region", Values: vs, Negate: negate}
	}
	match := func(negate bool, expr string) storage.AttributeFilter {
		return storage.AttributeFilter{Key: "http.status", Match: regexp.MustCompile(expr), Negate: negate}
	}
	for _, c := range []struct {
		caption string
		q       storage.TraceQuery
		want    []pcommon.TraceID
	}{
		{"single value (as Attributes)", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(false, "503")}}, ids(6003)},
		{"OR, int and resource values", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(false, "500", "503")}}, ids(6006, 6005, 6003, 6002)},
		{"OR with a value in an event", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(false, "404", "200")}}, ids(6007, 6001)},
		{"OR with a service", storage.TraceQuery{ServiceName: "attr-svc", AttributeFilters: []storage.AttributeFilter{status(false, "404", "503", "nope")}}, ids(6007, 6003)},
		{"NOT: absent or other values", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(true, "500", "503")}},
			// 6006's region span has no status; 6007's 404 is neither.
			ids(6007, 6006, 6004, 6001)},
		{"presence", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(false)}}, ids(6007, 6006, 6005, 6003, 6002, 6001)},
		{"absence", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(true)}}, ids(6006, 6004)},
		{"OR and NOT on one span", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(false, "500", "503"), region(true, "eu")}},
			ids(6006, 6003, 6002)},
		{"OR and presence must hold on one span", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(false, "500"), region(false)}}, ids(6005)},
		{"OR in a link", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{region(false, "sa", "ap")}}, ids(6007, 6006)},
		{"filters AND equality map", storage.TraceQuery{Attributes: map[string]string{"region": "us"}, AttributeFilters: []storage.AttributeFilter{status(true)}}, ids(6004)},
		{"two OR filters", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{region(false, "us", "eu"), status(false, "200", "503", "x")}}, ids(6003, 6001)},
		{"OR with limit", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{status(false, "500", "503")}, Limit: 2}, ids(6006, 6005)},
		{"regexp: int, resource and event values", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{match(false, "^(5|40)")}}, ids(6007, 6006, 6005, 6003, 6002)},
		{"regexp unanchored", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{match(false, "0$")}}, ids(6006, 6005, 6002, 6001)},
		{"regexp with a service", storage.TraceQuery{ServiceName: "attr-svc", AttributeFilters: []storage.AttributeFilter{match(false, "3$")}}, ids(6003)},
		{"regexp matching nothing", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{match(false, "^9")}}, ids()},
		{"NOT regexp: absent or no value matching", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{match(true, "^5")}}, ids(6007, 6006, 6004, 6001)},
		{"regexp and NOT on one span", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{match(false, "^50"), region(true, "eu")}}, ids(6006, 6003, 6002)},
		{"regexp and a region regexp on one span", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{match(false, "^50"),
			{Key: "region", Match: regexp.MustCompile("^[ae]")}}}, ids(6005)},
		{"regexp with limit", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{match(false, "^5")}, Limit: 2}, ids(6006, 6005)},
	} {
		expectIDs(t, s, c.caption, c.q, c.want)
	}
	if _, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{{Values: []string{"x"}}}}); !storage.IsInvalidInput(err) {
		t.Fatalf("filter without key: err = %v, want invalid input", err)
	}
	both := storage.AttributeFilter{Key: "http.status", Values: []string{"500"}, Match: regexp.MustCompile("5")}
	if _, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{both}}); !storage.IsInvalidInput(err) {
		t.Fatalf("filter with values and a regexp: err = %v, want invalid input", err)
	}
}

// testTiesAndCursor: equal starts order by trace ID, also across page boundaries, and
// following the cursor returns every trace once, in the order of one big page.
func testTiesAndCursor(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-4 * time.Hour).Truncate(time.Second)
	var specs []spanSpec
	// 57 traces over four hourly buckets; every third start is shared by three traces.
	for i := range 57 {
		start := base.Add(time.Duration(i/3) * 11 * time.Minute)
		specs = append(specs, spanSpec{trace: traceID(uint64(7100 - i*7%57)), id: 1, service: "page-svc", name: "op", start: start,
			duration: time.Millisecond, attrs: map[string]string{"shard": fmt.Sprint(i % 4)}, isError: i%5 == 0})
	}
	// Several batches, not in time order.
	for _, part := range [][2]int{{40, 57}, {0, 13}, {13, 40}} {
		mustWrite(t, s, batch(specs[part[0]:part[1]]...))
	}
	full, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: "page-svc", Limit: 100})
	if err != nil || len(full) != 57 {
		t.Fatalf("one big page: %d traces, %v; want 57", len(full), err)
	}
	// The expected order, computed from the specs: start desc, trace ID asc.
	want := slices.Clone(specs)
	slices.SortFunc(want, func(a, b spanSpec) int {
		if c := b.start.Compare(a.start); c != 0 {
			return c
		}
		return slices.Compare(a.trace[:], b.trace[:])
	})
	for i := range want {
		if full[i] != want[i].trace {
			t.Fatalf("big page [%d] = %v, want %v", i, idStrings(full[i:i+1]), idStrings([]pcommon.TraceID{want[i].trace}))
		}
	}
	for _, c := range []struct {
		caption string
		q       storage.TraceQuery
	}{
		{"service", storage.TraceQuery{ServiceName: "page-svc", Limit: 10}},
		{"every trace", storage.TraceQuery{Limit: 10}},
		{"limit 3 splits every tie", storage.TraceQuery{ServiceName: "page-svc", Limit: 4}},
		{"limit 1", storage.TraceQuery{Limit: 1}},
		{"OR filter", storage.TraceQuery{AttributeFilters: []storage.AttributeFilter{{Key: "shard", Values: []string{"1", "3"}}}, Limit: 7}},
		{"errors only, window", storage.TraceQuery{ErrorsOnly: true, StartTimeMin: base.Add(30 * time.Minute), Limit: 2}},
		{"trace duration", storage.TraceQuery{TraceDurationMax: time.Millisecond, Limit: 10}},
	} {
		got := pageAll(t, s, c.q, nil)
		q := c.q
		q.Limit = 1000
		all, err := s.FindTraceIDs(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: FindTraceIDs: %v", c.caption, err)
		}
		if len(all) == 0 || !slices.Equal(got, all) {
			t.Fatalf("%s: pages\n %v\nwant the big page\n %v", c.caption, idStrings(got), idStrings(all))
		}
	}
	if got := pageAll(t, s, storage.TraceQuery{ServiceName: "page-svc", Limit: 10}, nil); len(got) != 57 {
		t.Fatalf("57 traces by 10: got %d", len(got))
	}
	// Summaries and spans of a page, and a cursor passed to FindTraceIDs.
	res, err := s.SearchTraces(context.Background(), storage.TraceQuery{ServiceName: "page-svc", Limit: 10}, storage.WithSpans)
	if err != nil || len(res.Summaries) != 10 || len(res.Traces) != 10 {
		t.Fatalf("WithSpans: %d summaries, %d traces, %v", len(res.Summaries), len(res.Traces), err)
	}
	for i, sum := range res.Summaries {
		if sum.TraceID != want[i].trace || !sum.Start.Equal(want[i].start) || sum.SpanCount != 1 || sum.Duration != time.Millisecond ||
			sum.RootService != "page-svc" || res.Traces[i].SpanCount() != 1 ||
			res.Traces[i].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID() != sum.TraceID {
			t.Fatalf("page [%d]: summary %+v, %d spans; want trace %v starting %s", i, sum, res.Traces[i].SpanCount(),
				idStrings([]pcommon.TraceID{want[i].trace}), want[i].start)
		}
	}
	next, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: "page-svc", Limit: 5, Cursor: res.NextCursor})
	if err != nil || !slices.Equal(next, full[10:15]) {
		t.Fatalf("FindTraceIDs after the cursor = %v, %v; want %v", idStrings(next), err, idStrings(full[10:15]))
	}
	for _, bad := range []string{"x", "AAAA", res.NextCursor + "A"} {
		if _, err := s.SearchTraces(context.Background(), storage.TraceQuery{Cursor: bad}, storage.SummariesOnly); !storage.IsInvalidInput(err) {
			t.Fatalf("cursor %q: err = %v, want invalid input", bad, err)
		}
	}
}

// testPaginationWhileWriting writes between pages: new traces newer and older than the
// cursor, and spans that move an already returned trace behind the cursor. The pages
// still return the first page's snapshot, each trace exactly once.
func testPaginationWhileWriting(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var specs []spanSpec
	for i := range 57 {
		specs = append(specs, spanSpec{trace: traceID(uint64(8000 + i)), id: 1, service: "live-svc", name: "op",
			start: base.Add(time.Duration(i) * 2 * time.Minute), duration: time.Millisecond})
	}
	mustWrite(t, s, batch(specs...))
	before, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: "live-svc", Limit: 100})
	if err != nil || len(before) != 57 {
		t.Fatalf("before: %d traces, %v", len(before), err)
	}
	n := uint64(9000)
	got := pageAll(t, s, storage.TraceQuery{ServiceName: "live-svc", Limit: 10}, func(page int) {
		n++
		mustWrite(t, s, batch(
			// Newer than every page.
			spanSpec{trace: traceID(n), id: 1, service: "live-svc", name: "op", start: base.Add(3 * time.Hour), duration: time.Millisecond},
			// Older than every trace: behind the cursor.
			spanSpec{trace: traceID(n + 100), id: 1, service: "live-svc", name: "op", start: base.Add(-time.Hour), duration: time.Millisecond},
			// A late span of the newest trace (already returned) that starts before all
			// others: the trace's start moves behind the cursor.
			spanSpec{trace: traceID(8056), id: uint64(10 + page), parent: 1, service: "live-svc", name: "late", start: base.Add(-2 * time.Hour),
				duration: time.Millisecond},
			// A late span of the oldest trace (not yet returned) from a new service.
			spanSpec{trace: traceID(8000), id: uint64(10 + page), parent: 1, service: "live-other", name: "late", start: base.Add(time.Hour),
				duration: time.Millisecond},
		))
	})
	if !slices.Equal(got, before) {
		t.Fatalf("pages while writing\n %v\nwant\n %v", idStrings(got), idStrings(before))
	}
	// A new search sees everything written since.
	after, err := s.FindTraceIDs(context.Background(), storage.TraceQuery{ServiceName: "live-svc", Limit: 200})
	if err != nil || len(after) != 57+2*5 {
		t.Fatalf("after: %d traces, %v; want %d", len(after), err, 57+2*5)
	}
	if after[len(after)-1] != traceID(8056) {
		t.Fatalf("after: the oldest trace is %v, want 8056 (its late span starts first)", idStrings(after[len(after)-1:]))
	}
}

// testLateBatchService writes one trace in six batches, out of order and minutes apart,
// from several services; the batch written last alone carries the audit service.
func testLateBatchService(t *testing.T, open Opener) {
	s := openFresh(t, open)
	id := traceID(9500)
	base := time.Now().Add(-90 * time.Minute).Truncate(time.Second)
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	parts := [][]spanSpec{
		{{trace: id, id: 1, service: "late-gateway", name: "POST /checkout", kind: ptrace.SpanKindServer, start: at(0), duration: 40 * time.Minute}},
		{{trace: id, id: 2, parent: 1, service: "late-orders", name: "create", start: at(1), duration: time.Second},
			{trace: id, id: 3, parent: 2, service: "late-orders", name: "db", start: at(2), duration: time.Millisecond}},
		{{trace: id, id: 4, parent: 1, service: "late-payments", name: "charge", start: at(5), duration: time.Second, isError: true}},
		{{trace: id, id: 5, parent: 4, service: "late-payments", name: "retry", start: at(9), duration: time.Second}},
		{{trace: id, id: 6, parent: 1, service: "late-notify", name: "email", start: at(20), duration: time.Second, isError: true}},
		{{trace: id, id: 7, parent: 1, service: "late-audit", name: "record", start: at(45), duration: 3 * time.Minute}},
	}
	// Other traces share the batches, the audit service among them only in other traces' batches.
	noise := func(n uint64, svc string, m int) spanSpec {
		return spanSpec{trace: traceID(n), id: 1, service: svc, name: "noise", start: at(m), duration: time.Millisecond}
	}
	mustWrite(t, s, batch(append(parts[3], noise(9501, "late-orders", 9))...))
	mustWrite(t, s, batch(append(parts[1], noise(9502, "late-gateway", 1))...))
	mustWrite(t, s, batch(parts[4]...))
	mustWrite(t, s, batch(append(parts[0], noise(9503, "late-payments", 0))...))
	mustWrite(t, s, batch(parts[2]...))
	mustWrite(t, s, batch(append(parts[5], noise(9504, "late-audit", 46))...))

	expectIDs(t, s, "audit", storage.TraceQuery{ServiceName: "late-audit"}, ids(9504, 9500))
	expectIDs(t, s, "audit, long traces", storage.TraceQuery{ServiceName: "late-audit", TraceDurationMin: 45 * time.Minute}, ids(9500))
	expectIDs(t, s, "audit span, trace errors", storage.TraceQuery{ServiceName: "late-audit", TraceErrorsOnly: true}, ids(9500))
	expectIDs(t, s, "audit span errors", storage.TraceQuery{ServiceName: "late-audit", ErrorsOnly: true}, ids())
	expectIDs(t, s, "audit in a window", storage.TraceQuery{ServiceName: "late-audit", StartTimeMin: at(44), StartTimeMax: at(45)}, ids(9500))
	expectIDs(t, s, "audit operation", storage.TraceQuery{ServiceName: "late-audit", OperationName: "record", DurationMin: time.Minute}, ids(9500))

	want := storage.TraceSummary{
		TraceID: id, HasRoot: true, RootService: "late-gateway", RootOperation: "POST /checkout",
		Start: at(0).UTC(), Duration: 48 * time.Minute, SpanCount: 7, ErrorCount: 2,
		Services: []storage.ServiceSummary{
			{Name: "late-audit", SpanCount: 1},
			{Name: "late-gateway", SpanCount: 1},
			{Name: "late-notify", SpanCount: 1, ErrorCount: 1},
			{Name: "late-orders", SpanCount: 2},
			{Name: "late-payments", SpanCount: 2, ErrorCount: 1},
		},
	}
	got, err := s.GetTraceSummary(context.Background(), id)
	if err != nil {
		t.Fatalf("GetTraceSummary: %v", err)
	}
	checkSummary(t, "GetTraceSummary", got, want)
	res, err := s.SearchTraces(context.Background(), storage.TraceQuery{ServiceName: "late-audit", Limit: 2}, storage.SummariesOnly)
	if err != nil || len(res.Summaries) != 2 || res.NextCursor == "" {
		t.Fatalf("SearchTraces: %d summaries, next %q, %v", len(res.Summaries), res.NextCursor, err)
	}
	checkSummary(t, "SearchTraces", res.Summaries[1], want)
	// A trace with no root stored yet.
	got, err = s.GetTraceSummary(context.Background(), traceID(9504))
	if err != nil || !got.HasRoot || got.RootService != "late-audit" {
		t.Fatalf("GetTraceSummary(9504) = %+v, %v", got, err)
	}
	mustWrite(t, s, batch(spanSpec{trace: traceID(9505), id: 2, parent: 1, service: "late-orders", name: "orphan", start: at(3), duration: time.Millisecond}))
	if got, err = s.GetTraceSummary(context.Background(), traceID(9505)); err != nil || got.HasRoot || got.RootService != "" || got.SpanCount != 1 {
		t.Fatalf("GetTraceSummary(rootless) = %+v, %v", got, err)
	}
	if _, err := s.GetTraceSummary(context.Background(), traceID(9599)); !errors.Is(err, storage.ErrTraceNotFound) {
		t.Fatalf("GetTraceSummary(missing) err = %v, want ErrTraceNotFound", err)
	}
}

func checkSummary(t *testing.T, caption string, got, want storage.TraceSummary) {
	t.Helper()
	if got.TraceID != want.TraceID || got.HasRoot != want.HasRoot || got.RootService != want.RootService ||
		got.RootOperation != want.RootOperation || !got.Start.Equal(want.Start) || got.Duration != want.Duration ||
		got.SpanCount != want.SpanCount || got.ErrorCount != want.ErrorCount || !slices.Equal(got.Services, want.Services) {
		t.Fatalf("%s\n got %+v\nwant %+v", caption, got, want)
	}
}

// testWindowBetweenSpans: a trace whose spans of a service start before and after the
// window, none inside it, does not match; summaries and index bounds cannot decide it.
func testWindowBetweenSpans(t *testing.T, open Opener) {
	s := openFresh(t, open)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Hour).Add(5 * time.Minute)
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	mustWrite(t, s, batch(
		spanSpec{trace: traceID(9601), id: 1, service: "gap-svc", name: "a", start: at(0), duration: time.Millisecond},
		spanSpec{trace: traceID(9601), id: 2, parent: 1, service: "gap-svc", name: "b", start: at(10), duration: time.Millisecond},
		spanSpec{trace: traceID(9602), id: 1, service: "gap-svc", name: "a", start: at(1), duration: time.Millisecond},
		spanSpec{trace: traceID(9602), id: 2, parent: 1, service: "gap-svc", name: "b", start: at(5), duration: time.Millisecond, isError: true},
		spanSpec{trace: traceID(9602), id: 3, parent: 1, service: "gap-svc", name: "c", start: at(9), duration: time.Millisecond},
	))
	win := func(q storage.TraceQuery) storage.TraceQuery {
		q.StartTimeMin, q.StartTimeMax = at(3), at(7)
		return q
	}
	expectIDs(t, s, "service", win(storage.TraceQuery{ServiceName: "gap-svc"}), ids(9602))
	expectIDs(t, s, "every trace", win(storage.TraceQuery{}), ids(9602))
	expectIDs(t, s, "errors only", win(storage.TraceQuery{ServiceName: "gap-svc", ErrorsOnly: true}), ids(9602))
	expectIDs(t, s, "no window", storage.TraceQuery{ServiceName: "gap-svc"}, ids(9602, 9601))
}

// testStatusWindows: status OK and Unset searches, with and without a service, an
// operation or a start window, over traces spread across hour buckets, written in
// batches before and after a restart, with late spans added to stored traces; the
// expected traces come from the written spans themselves (statusMatches).
func testStatusWindows(t *testing.T, open Opener) {
	dir := t.TempDir()
	s := open(t, dir)
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	base := time.Now().Add(-6 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	var all, first, second []spanSpec
	for i := 1; i <= 30; i++ {
		id, at := traceID(uint64(7300+i)), base.Add(time.Duration(i)*9*time.Minute)
		name := "GET /x"
		if i%2 == 0 {
			name = "GET /y"
		}
		dbAt := at.Add(time.Millisecond)
		if i%4 == 1 {
			dbAt = at.Add(30 * time.Minute) // often in the next hour bucket
		}
		specs := []spanSpec{
			{trace: id, id: 1, service: "sw-gw", name: name, start: at, duration: time.Second, isOK: i%3 == 0, isError: i%7 == 0 && i%3 != 0},
			{trace: id, id: 2, parent: 1, service: "sw-db", name: "query", start: dbAt, duration: time.Millisecond, isOK: i%5 == 0, isError: i%6 == 0 && i%5 != 0},
		}
		if i%2 == 0 {
			specs = append(specs, spanSpec{trace: id, id: 3, parent: 1, service: "sw-pay", name: "charge", start: at.Add(2 * time.Millisecond), duration: time.Millisecond, isOK: true})
		}
		if i <= 15 {
			first = append(first, specs...)
		} else {
			second = append(second, specs...)
		}
		all = append(all, specs...)
	}
	mustWrite(t, s, batch(first[:len(first)/2]...))
	mustWrite(t, s, batch(first[len(first)/2:]...))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dir)
	mustWrite(t, s, batch(second...))
	// Late spans: an ok span for an unset trace, an unset one for a trace whose database
	// span was ok, an hour after their traces started.
	late := []spanSpec{
		{trace: traceID(7301), id: 9, parent: 1, service: "sw-db", name: "late", start: base.Add(9*time.Minute + time.Hour), duration: time.Millisecond, isOK: true},
		{trace: traceID(7310), id: 9, parent: 1, service: "sw-db", name: "late", start: base.Add(90*time.Minute + time.Hour), duration: time.Millisecond},
	}
	mustWrite(t, s, batch(late...))
	all = append(all, late...)

	windows := [][2]time.Time{
		{},
		{base.Add(time.Hour), base.Add(3 * time.Hour)},
		{base.Add(37 * time.Minute), base.Add(67 * time.Minute)}, // cuts traces from their late database spans
		{base.Add(9*time.Minute + time.Hour), base.Add(9*time.Minute + time.Hour)},
		{base.Add(4 * time.Hour), time.Time{}},
		{time.Time{}, base.Add(45 * time.Minute)},
	}
	check := func(when string) {
		t.Helper()
		for _, status := range []storage.StatusCondition{storage.StatusOK, storage.StatusUnset} {
			for _, svc := range []string{"", "sw-gw", "sw-db", "sw-pay"} {
				for wi, w := range windows {
					q := storage.TraceQuery{ServiceName: svc, Status: status, StartTimeMin: w[0], StartTimeMax: w[1]}
					caption := fmt.Sprintf("%s: status %d, service %q, window %d", when, status, svc, wi)
					want := statusMatches(all, q)
					expectIDs(t, s, caption, q, want)
					q.Limit = 2
					if got := pageAll(t, s, q, nil); !slices.Equal(got, want) {
						t.Fatalf("%s, paged by 2: %v, want %v", caption, idStrings(got), idStrings(want))
					}
				}
			}
			for _, q := range []storage.TraceQuery{
				{ServiceName: "sw-gw", OperationName: "GET /y", Status: status},
				{ServiceName: "sw-gw", OperationName: "GET /x", Status: status, StartTimeMin: windows[1][0], StartTimeMax: windows[1][1]},
				{Status: status, TraceErrorsOnly: true},
				{ServiceName: "sw-db", Status: status, TraceDurationMin: 10 * time.Minute},
			} {
				expectIDs(t, s, fmt.Sprintf("%s: %+v", when, q), q, statusMatches(all, q))
			}
		}
	}
	check("after one restart")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dir)
	check("after two restarts")
}

// statusMatches is TraceQuery's contract evaluated on the spans written, for the
// conditions testStatusWindows uses: the traces with one span of the service and
// operation, with the status, starting in the window; newest first.
func statusMatches(specs []spanSpec, q storage.TraceQuery) []pcommon.TraceID {
	type extent struct {
		start, end time.Time
		failed     bool
	}
	traces := map[pcommon.TraceID]*extent{}
	for _, sp := range specs {
		e := traces[sp.trace]
		if e == nil {
			e = &extent{start: sp.start, end: sp.start.Add(sp.duration)}
			traces[sp.trace] = e
		}
		if sp.start.Before(e.start) {
			e.start = sp.start
		}
		if end := sp.start.Add(sp.duration); end.After(e.end) {
			e.end = end
		}
		e.failed = e.failed || sp.isError
	}
	matched := map[pcommon.TraceID]bool{}
	for _, sp := range specs {
		status := storage.StatusUnset
		switch {
		case sp.isError:
			status = storage.StatusError
		case sp.isOK:
			status = storage.StatusOK
		}
		switch {
		case q.ServiceName != "" && sp.service != q.ServiceName,
			q.OperationName != "" && sp.name != q.OperationName,
			q.Status != storage.AnyStatus && status != q.Status,
			!q.StartTimeMin.IsZero() && sp.start.Before(q.StartTimeMin),
			!q.StartTimeMax.IsZero() && sp.start.After(q.StartTimeMax):
			continue
		}
		e := traces[sp.trace]
		if (q.TraceErrorsOnly && !e.failed) || (q.TraceDurationMin > 0 && e.end.Sub(e.start) < q.TraceDurationMin) {
			continue
		}
		matched[sp.trace] = true
	}
	out := []pcommon.TraceID{}
	for id := range matched {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b pcommon.TraceID) int {
		if c := traces[b].start.Compare(traces[a].start); c != 0 {
			return c
		}
		return bytes.Compare(a[:], b[:])
	})
	return out
}
