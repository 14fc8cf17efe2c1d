package storagetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// testDependencies writes a payment flow the way SDKs export it, one batch per service
// and children before their parents, and checks the service graph: calls matched by
// parent span across batches, an error call, a client span naming an uninstrumented
// peer, time windows, an identical retry, and a restart. A store may wait before it
// counts a client span's peer (an answering server span may still come); Close ends the
// wait, so the peer call is checked after the restart.
func testDependencies(t *testing.T, open Opener) {
	dir := t.TempDir()
	s := open(t, dir)
	now := time.Now().Add(-10 * time.Minute)
	old := now.Add(-5 * time.Hour)
	sp := func(tr uint64, id, parent uint64, svc string, kind ptrace.SpanKind, start time.Time) spanSpec {
		return spanSpec{trace: traceID(tr), id: id, parent: parent, service: svc, name: svc + "-op", kind: kind, start: start, duration: time.Millisecond}
	}
	payments := sp(101, 5, 4, "payments", ptrace.SpanKindServer, now)
	payments.isError = true
	card := sp(101, 6, 5, "payments", ptrace.SpanKindClient, now)
	card.peer = "card-network"
	ordersClient := sp(101, 4, 3, "orders", ptrace.SpanKindClient, now)
	ordersClient.peer = "payments" // answered by the payments span: counted once
	frontendClient := sp(101, 2, 1, "frontend", ptrace.SpanKindClient, now)
	frontendClient.peer = "orders-api" // answered by orders: the server's name wins
	ordersBatch := batch(
		sp(101, 3, 2, "orders", ptrace.SpanKindServer, now),
		ordersClient,
		sp(101, 7, 3, "orders", ptrace.SpanKindInternal, now), // same service: no edge
		sp(102, 13, 12, "orders", ptrace.SpanKindServer, now),
	)
	mustWrite(t, s, batch(payments, card))
	mustWrite(t, s, ordersBatch)
	mustWrite(t, s, batch(
		sp(101, 1, 0, "frontend", ptrace.SpanKindServer, now),
		frontendClient,
		sp(102, 11, 0, "frontend", ptrace.SpanKindServer, now),
		sp(102, 12, 11, "frontend", ptrace.SpanKindClient, now),
	))
	// Five hours earlier, parent first this time.
	mustWrite(t, s, batch(sp(103, 1, 0, "old-a", ptrace.SpanKindServer, old), sp(103, 2, 1, "old-a", ptrace.SpanKindClient, old)))
	mustWrite(t, s, batch(sp(103, 3, 2, "old-b", ptrace.SpanKindServer, old)))
	// An identical retry counts nothing.
	mustWrite(t, s, ordersBatch)

	link := func(p, c string, calls, errs uint64) storage.DependencyLink {
		return storage.DependencyLink{Parent: p, Child: c, CallCount: calls, ErrorCount: errs}
	}
	recent := []storage.DependencyLink{link("frontend", "orders", 2, 0), link("orders", "payments", 1, 1), link("payments", "card-network", 1, 0)}
	oldLinks := []storage.DependencyLink{link("old-a", "old-b", 1, 0)}
	end := time.Now()
	cases := []struct {
		caption  string
		end      time.Time
		lookback time.Duration
		want     []storage.DependencyLink
	}{
		{"last hour", end, time.Hour, recent},
		{"last day", end, 24 * time.Hour, []storage.DependencyLink{recent[0], oldLinks[0], recent[1], recent[2]}}, // sorted
		{"around the old calls", old.Add(30 * time.Minute), time.Hour, oldLinks},
		{"before everything", old.Add(-3 * time.Hour), time.Hour, nil},
	}
	check := func(when string, peerDecided bool) {
		t.Helper()
		for _, c := range cases {
			got, err := s.GetDependencies(context.Background(), c.end, c.lookback)
			if err != nil {
				t.Fatalf("%s, %s: GetDependencies: %v", when, c.caption, err)
			}
			if got == nil {
				t.Errorf("%s, %s: nil, want a non-nil slice", when, c.caption)
			}
			want := c.want
			if !peerDecided && slices.Contains(want, recent[2]) && !slices.Contains(got, recent[2]) {
				want = slices.DeleteFunc(slices.Clone(want), func(l storage.DependencyLink) bool { return l == recent[2] })
			}
			if fmt.Sprint(got) != fmt.Sprint(want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%s, %s:\n got %v\nwant %v", when, c.caption, got, want)
			}
		}
	}
	check("before restart", false)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dir)
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	check("after restart", true)
}
