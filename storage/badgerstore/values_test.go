package badgerstore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// TestAttributeValueCatalog: values of the cataloged keys, on spans and resources, per
// service, survive a restart; other keys are not cataloged; a service's values of one
// key stop at maxValuesPerScope, the rest counted.
func TestAttributeValueCatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	s.CatalogAttributeValues("peer.service", "deployment.environment")
	s.CatalogAttributeValues("peer.service") // again: no harm
	trace := byte(0)
	write := func(svc, env string, peers ...string) {
		t.Helper()
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("deployment.environment", env)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		trace++
		for i, p := range peers {
			sp := spans.AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{trace, byte(i >> 8), byte(i)})
			sp.SetSpanID(pcommon.SpanID{1, byte(i >> 8), byte(i)})
			sp.SetName("call")
			sp.Attributes().PutStr("peer.service", p)
			sp.Attributes().PutStr("user.id", "u-"+p)
			now := time.Now()
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		}
		if err := s.WriteTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
	}
	write("checkout", "prod", "payments", "inventory", "payments")
	write("payments", "prod", "bank")
	write("payments", "staging", "bank", "fraud")
	get := func(key, svc string, limit int) []string {
		t.Helper()
		got, err := s.GetAttributeValues(ctx, storage.AttributeValuesQuery{Key: key, ServiceName: svc, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			key, svc string
			limit    int
			want     []string
		}{
			{"peer.service", "checkout", 0, []string{"inventory", "payments"}},
			{"peer.service", "payments", 0, []string{"bank", "fraud"}},
			{"peer.service", "", 0, []string{"bank", "fraud", "inventory", "payments"}},
			{"peer.service", "", 2, []string{"bank", "fraud"}},
			{"deployment.environment", "payments", 0, []string{"prod", "staging"}},
			{"deployment.environment", "", 0, []string{"prod", "staging"}},
			{"user.id", "", 0, []string{}},
			{"peer.service", "nobody", 0, []string{}},
		} {
			if got := get(c.key, c.svc, c.limit); !slices.Equal(got, c.want) || got == nil {
				t.Errorf("%s: values of %s on %q (limit %d) = %#v, want %v", when, c.key, c.svc, c.limit, got, c.want)
			}
		}
	}
	check("after writing")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{NoSyncWrites: true}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check("after a restart")

	// A key with very many values stops growing per service.
	s.CatalogAttributeValues("peer.service")
	many := make([]string, maxValuesPerScope+5)
	for i := range many {
		many[i] = fmt.Sprintf("peer-%04d", i)
	}
	write("fanout", "prod", many...)
	if got := len(get("peer.service", "fanout", 0)); got != maxValuesPerScope {
		t.Fatalf("fanout has %d values, want the cap %d", got, maxValuesPerScope)
	}
	if d := s.Stats().AttributeValuesDropped; d != 5 {
		t.Fatalf("AttributeValuesDropped = %d, want 5", d)
	}
}

// TestIndexableValueInts: an int attribute is indexed (and so found) by the string
// AsString makes of it, also where a table of small ones stands in for formatting.
func TestIndexableValueInts(t *testing.T) {
	for _, i := range []int64{-1024, -1, 0, 7, 99, 100, 200, 404, 1023, 1024, 65535, math.MaxInt64, math.MinInt64} {
		v := pcommon.NewValueInt(i)
		got, ok := indexableValue(v)
		if !ok || got != v.AsString() {
			t.Errorf("indexableValue(%d) = %q, %v; want %q, true", i, got, ok, v.AsString())
		}
	}
}
