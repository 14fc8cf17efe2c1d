package spanmatch

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	server   = uint8(ptrace.SpanKindServer)
	client   = uint8(ptrace.SpanKindClient)
	internal = uint8(ptrace.SpanKindInternal)
)

// sp is a span of a test batch: key and parent key (0: root), its service, kind, and
// whether it names a peer.
type sp struct {
	key, parent uint64
	svc         uint32
	kind        uint8
	peer        bool
}

// kid is a child waiting for its parent: its service and how many spans it stands for.
type kid struct {
	key uint64
	svc uint32
	n   int64
}

// rig is a matcher whose hooks write down what they were told.
type rig struct {
	m          *Matcher[uint64, kid]
	links      []string // "parent>child" keys, calls between two services only
	unanswered []uint64
	orphans    int64
	matched    int64
	now        time.Time
}

func newRig(spanCap, pendingCap int, join bool) *rig {
	r := &rig{now: time.Unix(1000, 0)}
	h := Hooks[uint64, kid]{
		Link: func(p Span[uint64], c kid) bool {
			if p.Svc == c.svc {
				return false
			}
			r.links = append(r.links, fmt.Sprintf("%d>%d", p.Data, c.key))
			return true
		},
		Unanswered: func(s Span[uint64]) { r.unanswered = append(r.unanswered, s.Data) },
		Orphans:    func(n int64) { r.orphans += n },
	}
	if join {
		h.Weight = func(c kid) int64 { return c.n }
		h.Join = func(w, c kid) (kid, bool) {
			if w.svc != c.svc {
				return w, false
			}
			w.n += c.n
			return w, true
		}
	}
	r.m = New(time.Minute, spanCap, pendingCap, r.now, h)
	return r
}

// batch observes spans in the two passes the package documents.
func (r *rig) batch(spans ...sp) {
	r.m.Tick(r.now)
	for _, s := range spans {
		e := Span[uint64]{Data: s.key, Svc: s.svc, Kind: s.kind}
		if s.peer {
			e.Flags |= Peer
		}
		r.m.Put(s.key, e)
	}
	for _, s := range spans {
		if r.m.Awaited(s.key) {
			if p, ok := r.m.Lookup(s.key); ok {
				r.matched += r.m.Claim(s.key, p)
			}
		}
		if s.parent != 0 && r.m.Match(s.parent, kid{key: s.key, svc: s.svc, n: 1}) {
			r.matched++
		}
	}
}

// later moves the clock by d and observes an empty batch (a Tick).
func (r *rig) later(d time.Duration) {
	r.now = r.now.Add(d)
	r.batch()
}

func (r *rig) sizes() [4]int {
	spans, pending := r.m.Sizes(), r.m.Pending()
	return [4]int{spans[0], spans[1], len(pending[0]), len(pending[1])}
}

func (r *rig) check(t *testing.T, links string, matched, orphans int64, unanswered string) {
	t.Helper()
	slices.Sort(r.links)
	if got := strings.Join(r.links, " "); got != links {
		t.Errorf("links %q, want %q", got, links)
	}
	if r.matched != matched || r.orphans != orphans {
		t.Errorf("matched %d orphans %d, want %d %d", r.matched, r.orphans, matched, orphans)
	}
	slices.Sort(r.unanswered)
	if got := fmt.Sprint(r.unanswered); got != unanswered {
		t.Errorf("unanswered %s, want %s", got, unanswered)
	}
}

func TestSameBatchEitherOrder(t *testing.T) {
	r := newRig(100, 100, false)
	// 3 before its parent 2, 2 after its parent 1; 4 is an internal child of 1.
	r.batch(sp{key: 3, parent: 2, svc: 2, kind: server}, sp{key: 2, parent: 1, svc: 1, kind: client},
		sp{key: 1, svc: 1, kind: server}, sp{key: 4, parent: 1, svc: 1, kind: internal})
	r.check(t, "2>3", 3, 0, "[]")
	if s := r.sizes(); s[2]+s[3] != 0 {
		t.Errorf("children still waiting: %v", s)
	}
}

func TestChildBeforeParentAcrossBatches(t *testing.T) {
	r := newRig(100, 100, false)
	r.batch(sp{key: 11, parent: 10, svc: 2, kind: server})
	r.check(t, "", 0, 0, "[]")
	if s := r.sizes(); s[2] != 1 {
		t.Fatalf("child not waiting: %v", s)
	}
	r.later(time.Minute) // the child waits into the previous generation
	r.batch(sp{key: 10, svc: 1, kind: client, peer: true})
	r.check(t, "10>11", 1, 0, "[]")
	r.m.Drain() // answered: not a call to its peer
	r.check(t, "10>11", 1, 0, "[]")
}

func TestParentBeforeChildAcrossBatches(t *testing.T) {
	r := newRig(100, 100, false)
	r.batch(sp{key: 10, svc: 1, kind: client, peer: true})
	r.later(time.Minute) // the parent is in the previous generation
	r.batch(sp{key: 11, parent: 10, svc: 2, kind: server})
	r.check(t, "10>11", 1, 0, "[]")
	r.later(time.Minute) // it leaves answered
	r.later(time.Minute)
	r.check(t, "10>11", 1, 0, "[]")
	// Past two waits the parent is gone: its child waits, then is an orphan.
	r.batch(sp{key: 20, svc: 1, kind: client})
	r.later(time.Minute)
	r.later(time.Minute)
	r.batch(sp{key: 21, parent: 20, svc: 2, kind: server})
	r.later(time.Minute)
	r.later(time.Minute)
	r.check(t, "10>11", 1, 1, "[]")
}

func TestSeveralChildrenOfOneParent(t *testing.T) {
	for _, join := range []bool{false, true} {
		t.Run(fmt.Sprintf("join=%v", join), func(t *testing.T) {
			r := newRig(100, 100, join)
			r.batch(sp{key: 11, parent: 10, svc: 2}, sp{key: 12, parent: 10, svc: 3}, sp{key: 13, parent: 10, svc: 2})
			r.later(time.Minute)
			r.batch(sp{key: 14, parent: 10, svc: 2}, sp{key: 15, parent: 10, svc: 1})
			pending := r.m.Pending()
			if len(pending[0]) != 1 || len(pending[1]) != 1 || len(r.m.extra[1][10]) != 2-btoi(join) ||
				len(r.m.extra[0][10]) != 1 {
				t.Fatalf("waiting: %v, extra %v %v", *pending, r.m.extra[0], r.m.extra[1])
			}
			r.batch(sp{key: 10, svc: 1, kind: server})
			want := "10>11 10>12 10>13 10>14"
			if join { // 13 waited as part of 11, of the same service
				want = "10>11 10>12 10>14"
			}
			r.check(t, want, 5, 0, "[]")
			if s := r.sizes(); s[2]+s[3] != 0 || len(r.m.extra[0])+len(r.m.extra[1]) != 0 {
				t.Errorf("children still waiting: %v", s)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A span naming a peer is a call to it when it leaves unanswered: after between one
// and two waits, not when a child of its own service or a copy written since remains.
func TestTurnOverCounts(t *testing.T) {
	r := newRig(100, 100, true)
	r.batch(sp{key: 1, svc: 1, kind: client, peer: true}, // unanswered
		sp{key: 2, svc: 1, kind: client, peer: true}, sp{key: 3, parent: 2, svc: 1, kind: internal}, // same service
		sp{key: 4, svc: 1, kind: client, peer: true}, sp{key: 5, parent: 4, svc: 2, kind: server}, // answered
		sp{key: 6, svc: 1, kind: client, peer: true}, // written again later
		sp{key: 7, svc: 1, kind: client},             // no peer
		sp{key: 8, parent: 99, svc: 2}, sp{key: 9, parent: 99, svc: 2}, sp{key: 10, parent: 98, svc: 3})
	r.later(time.Minute - 1)
	r.check(t, "4>5", 2, 0, "[]")
	r.later(1)
	r.check(t, "4>5", 2, 0, "[]")
	r.batch(sp{key: 6, svc: 1, kind: client, peer: true})
	r.later(time.Minute)
	r.check(t, "4>5", 2, 3, "[1 2]")
	r.later(time.Minute)
	r.check(t, "4>5", 2, 3, "[1 2 6]")
	if s := r.sizes(); s != [4]int{} {
		t.Errorf("sizes %v after two empty turns", s)
	}
}

func TestDrain(t *testing.T) {
	r := newRig(100, 100, false)
	r.batch(sp{key: 1, svc: 1, kind: client, peer: true}, sp{key: 2, parent: 50, svc: 2}, sp{key: 3, parent: 50, svc: 3})
	r.m.Drain()
	r.check(t, "", 0, 2, "[1]")
	if s := r.sizes(); s != [4]int{} {
		t.Errorf("sizes %v after Drain", s)
	}
	r.m.Drain()
	r.check(t, "", 0, 2, "[1]")
}

// Full generations turn over early: memory is bounded by the capacities, whatever
// comes, and what leaves is counted.
func TestCapacity(t *testing.T) {
	r := newRig(4, 2, false)
	for i := range uint64(50) {
		r.batch(sp{key: 100 + i, svc: 1, kind: client, peer: true}, sp{key: 1000 + i, parent: 5000 + i, svc: 2})
		if s := r.sizes(); s[0] > 4 || s[1] > 4 || s[2] > 2 || s[3] > 2 {
			t.Fatalf("sizes %v exceed 4 4 2 2", s)
		}
	}
	if r.orphans < 46 || len(r.unanswered) < 42 {
		t.Errorf("orphans %d unanswered %d, want at least 46 and 42", r.orphans, len(r.unanswered))
	}
	r.m.Drain()
	if r.orphans != 50 || len(r.unanswered) != 50 {
		t.Errorf("after Drain: orphans %d unanswered %d, want 50 50", r.orphans, len(r.unanswered))
	}
}

// Zipkin's shared span IDs: client and server write one key; the server side keeps it.
func TestSharedSpanID(t *testing.T) {
	r := newRig(100, 100, false)
	r.batch(sp{key: 11, parent: 10, svc: 3}) // a child of the shared span, before it
	r.batch(sp{key: 10, svc: 1, kind: client, peer: true}, sp{key: 10, svc: 2, kind: server})
	r.batch(sp{key: 10, svc: 1, kind: client, peer: true}) // a retry of the client side
	r.batch(sp{key: 12, parent: 10, svc: 3})
	if s, _ := r.m.Lookup(10); s.Svc != 2 {
		t.Errorf("span 10 is of service %d, want the server's 2", s.Svc)
	}
	r.check(t, "10>11 10>12", 2, 0, "[]")
}

// Claim links to the parent the caller names; the span remembered is the one flagged.
func TestClaimNamedParent(t *testing.T) {
	r := newRig(100, 100, false)
	r.batch(sp{key: 11, parent: 10, svc: 2})
	r.m.Put(10, Span[uint64]{Data: 10, Svc: 1, Kind: client, Flags: Peer})
	if n := r.m.Claim(10, Span[uint64]{Data: 77, Svc: 5}); n != 1 {
		t.Errorf("Claim: %d, want 1", n)
	}
	if s, _ := r.m.Lookup(10); s.Flags&Answered == 0 {
		t.Error("span 10 not answered")
	}
	r.check(t, "77>11", 0, 0, "[]")
}

func TestKey(t *testing.T) {
	a := Key(pcommon.TraceID{1}, pcommon.SpanID{1})
	if a == 0 || a == Key(pcommon.TraceID{2}, pcommon.SpanID{1}) || a == Key(pcommon.TraceID{1}, pcommon.SpanID{2}) {
		t.Errorf("keys collide or are 0: %x", a)
	}
	if Key(pcommon.TraceID{}, pcommon.SpanID{}) == 0 {
		t.Error("key 0")
	}
}

// A span written again by its own service (an SDK's retry) stays answered.
func TestRewrittenSpanStaysAnswered(t *testing.T) {
	r := newRig(100, 100, false)
	r.batch(sp{key: 1, svc: 1, kind: client, peer: true}, sp{key: 2, parent: 1, svc: 2, kind: server})
	r.batch(sp{key: 1, svc: 1, kind: client, peer: true})
	r.m.Drain()
	r.check(t, "1>2", 1, 0, "[]")
}
