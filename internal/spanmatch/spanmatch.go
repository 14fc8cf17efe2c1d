package spanmatch

import (
	"encoding/binary"
	"math/bits"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Flags of a remembered span.
const (
	Error    uint8 = 1 << iota // status Error: kept for the caller, not read
	Peer                       // a client or producer span naming an uninstrumented peer
	Answered                   // a span of another service answered it (Hooks.Link said so)
)

// Span is what a Matcher remembers of a recent span: the service, kind and flags it
// reads, and the caller's payload. The payload comes first so that the header fills
// what would be its padding.
type Span[P any] struct {
	Data  P
	Svc   uint32 // the caller's id of the span's service
	Kind  uint8  // ptrace.SpanKind
	Flags uint8
}

// isServer reports whether the span is the server side of a call: it wins a span ID it
// shares with its client (Zipkin's shared spans).
func isServer(kind uint8) bool {
	return kind == uint8(ptrace.SpanKindServer) || kind == uint8(ptrace.SpanKindConsumer)
}

// Hooks are what a match means to the caller, C being a child waiting for its parent.
// They are called with the caller's lock held, once per match or per span leaving
// the matcher, never once per span observed.
type Hooks[P, C any] struct {
	// Link counts the call from parent to its child c, and reports whether c answered
	// parent: then a parent flagged Peer is not a call to its peer. Required.
	Link func(parent Span[P], c C) bool
	// Unanswered counts a span flagged Peer that no span answered, as it leaves the
	// matcher: a call to its peer. Required.
	Unanswered func(s Span[P])
	// Orphans counts the n children (by Weight) of one turn over whose parent never
	// came. Nil: not counted.
	Orphans func(n int64)
	// Weight is how many children c stands for (see Join). Nil: one.
	Weight func(c C) int64
	// Join returns w and c as one waiting child (say, counts of one service), or false
	// when they must wait apart. Nil: they always wait apart.
	Join func(w, c C) (C, bool)
}

// Matcher is a two-generation parent/child span matcher. It is not safe for
// concurrent use.
type Matcher[P, C any] struct {
	// Two generations each: [0] is current, [1] the previous one, dropped at the next
	// turn over. spans: recent spans by Key; pending: a child by its parent's Key;
	// extra: further children of that parent.
	spans   [2]*table[Span[P]]
	pending [2]map[uint64]C
	extra   [2]map[uint64][]C

	turned              time.Time
	wait                time.Duration
	spanCap, pendingCap int
	h                   Hooks[P, C]
}

// New returns a matcher whose spans and children wait between one and two waits from
// now on, at most spanCap spans and pendingCap parents waited for per generation.
func New[P, C any](wait time.Duration, spanCap, pendingCap int, now time.Time, h Hooks[P, C]) *Matcher[P, C] {
	if h.Link == nil || h.Unanswered == nil {
		panic("BUG: spanmatch.New without Link or Unanswered")
	}
	m := &Matcher[P, C]{turned: now, wait: wait, spanCap: spanCap, pendingCap: pendingCap, h: h}
	for i := range 2 {
		m.spans[i] = newTable[Span[P]](spanCap)
		m.pending[i] = map[uint64]C{}
		m.extra[i] = map[uint64][]C{}
	}
	return m
}

// Key hashes a trace ID and span ID into 64 bits (a multiply-fold mix, as in
// wyhash): span IDs alone repeat across traces in some generators. Never 0, which
// callers may use for "no parent".
func Key(t pcommon.TraceID, s pcommon.SpanID) uint64 {
	const k0, k1, k2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
	mix := func(a, b uint64) uint64 { hi, lo := bits.Mul64(a, b); return hi ^ lo }
	h := mix(binary.LittleEndian.Uint64(t[:8])^k0, binary.LittleEndian.Uint64(t[8:])^k1)
	h = mix(h^binary.LittleEndian.Uint64(s[:]), k2)
	if h == 0 {
		h = 1
	}
	return h
}

// Tick turns both tables over when the wait has passed since the last time.
func (m *Matcher[P, C]) Tick(now time.Time) {
	if now.Sub(m.turned) >= m.wait {
		m.turnSpans()
		m.turnPending()
		m.turned = now
	}
}

// Drain decides everything still waiting, as if the wait had passed twice: spans
// unanswered become calls to their peer, children without parent orphans.
func (m *Matcher[P, C]) Drain() {
	for range 2 {
		m.turnSpans()
		m.turnPending()
	}
}

// Put remembers a span (the first pass over a batch). A span written again under
// the same key replaces the former, except that a server side is not replaced by
// its client (a Zipkin shared span ID answers as its server side), and that a span
// of the same service stays answered.
func (m *Matcher[P, C]) Put(key uint64, s Span[P]) {
	if m.spans[0].n >= m.spanCap {
		m.turnSpans()
	}
	old, ok := m.spans[0].put(key)
	if ok {
		if isServer(old.Kind) && !isServer(s.Kind) {
			return
		}
		if old.Svc == s.Svc {
			s.Flags |= old.Flags & Answered
		}
	}
	*old = s
}

// Touch reads ahead the places where Put will look for keys (a batch's spans), so that
// their cache misses overlap; it returns a value for the caller to keep, so that the
// reads are not optimized away.
func (m *Matcher[P, C]) Touch(keys func(yield func(uint64) bool)) uint64 {
	return m.spans[0].touch(keys)
}

// Lookup returns the span remembered under key.
func (m *Matcher[P, C]) Lookup(key uint64) (Span[P], bool) {
	if s := m.lookup(key); s != nil {
		return *s, true
	}
	return Span[P]{}, false
}

// lookup returns the span remembered under key, in place (valid until the next Put),
// or nil.
func (m *Matcher[P, C]) lookup(key uint64) *Span[P] {
	if s := m.spans[0].get(key); s != nil {
		return s
	}
	return m.spans[1].get(key)
}

// Waiting reports whether any child waits for its parent: when none does, the second
// pass need not Claim.
func (m *Matcher[P, C]) Waiting() bool {
	return len(m.pending[0])+len(m.pending[1]) > 0
}

// Awaited reports whether a child waits for the span key: only then need the second
// pass look the span up and Claim (the pending tables are small, the span tables big:
// a lookup there is a cache miss per span).
func (m *Matcher[P, C]) Awaited(key uint64) bool {
	if len(m.pending[0])+len(m.pending[1]) == 0 {
		return false
	}
	if _, ok := m.pending[0][key]; ok {
		return true
	}
	_, ok := m.pending[1][key]
	return ok
}

// Claim links the children waiting for the span key to parent (usually the span
// remembered under key) and returns how many they were, by Weight.
func (m *Matcher[P, C]) Claim(key uint64, parent Span[P]) int64 {
	var n int64
	answered := false
	take := func(c C) {
		n += m.weight(c)
		if m.h.Link(parent, c) {
			answered = true
		}
	}
	for gen := range 2 {
		c, ok := m.pending[gen][key]
		if !ok {
			continue
		}
		take(c)
		delete(m.pending[gen], key)
		if more, ok := m.extra[gen][key]; ok {
			for _, c := range more {
				take(c)
			}
			delete(m.extra[gen], key)
		}
	}
	if answered {
		m.answer(key)
	}
	return n
}

// Match links c to its parent span, remembered under the key parent, and reports
// true; or keeps c waiting for it and reports false.
func (m *Matcher[P, C]) Match(parent uint64, c C) bool {
	p := m.lookup(parent)
	if p == nil {
		m.addPending(parent, c)
		return false
	}
	if m.h.Link(*p, c) && p.Flags&(Peer|Answered) == Peer {
		p.Flags |= Answered
	}
	return true
}

// answer flags the span remembered under key as answered.
func (m *Matcher[P, C]) answer(key uint64) {
	if p := m.lookup(key); p != nil && p.Flags&(Peer|Answered) == Peer {
		p.Flags |= Answered
	}
}

func (m *Matcher[P, C]) weight(c C) int64 {
	if m.h.Weight == nil {
		return 1
	}
	return m.h.Weight(c)
}

func (m *Matcher[P, C]) addPending(parent uint64, c C) {
	cur := m.pending[0]
	if w, ok := cur[parent]; ok {
		more := m.extra[0][parent]
		if m.h.Join != nil {
			if j, ok := m.h.Join(w, c); ok {
				cur[parent] = j
				return
			}
			for i := range more {
				if j, ok := m.h.Join(more[i], c); ok {
					more[i] = j
					return
				}
			}
		}
		m.extra[0][parent] = append(more, c)
		return
	}
	if len(cur) >= m.pendingCap {
		m.turnPending()
		cur = m.pending[0]
	}
	cur[parent] = c
}

// turnSpans drops the previous generation of spans, counting its spans that named a
// peer and that no span answered, and starts a new current generation.
func (m *Matcher[P, C]) turnSpans() {
	old := m.spans[1]
	old.all(func(k uint64, s *Span[P]) {
		if s.Flags&(Peer|Answered) != Peer {
			return
		}
		if m.spans[0].get(k) != nil {
			return // written again since: it is decided when that copy leaves
		}
		m.h.Unanswered(*s)
	})
	old.reset()
	m.spans[0], m.spans[1] = old, m.spans[0]
}

// turnPending drops the previous generation of waiting children as orphans.
func (m *Matcher[P, C]) turnPending() {
	var n int64
	if m.h.Weight == nil {
		n = int64(len(m.pending[1]))
		for _, more := range m.extra[1] {
			n += int64(len(more))
		}
	} else {
		for _, c := range m.pending[1] {
			n += m.h.Weight(c)
		}
		for _, more := range m.extra[1] {
			for _, c := range more {
				n += m.h.Weight(c)
			}
		}
	}
	if n > 0 && m.h.Orphans != nil {
		m.h.Orphans(n)
	}
	clear(m.pending[1])
	clear(m.extra[1])
	m.pending[0], m.pending[1] = m.pending[1], m.pending[0]
	m.extra[0], m.extra[1] = m.extra[1], m.extra[0]
}

// Sizes returns how many spans each generation holds, current first.
func (m *Matcher[P, C]) Sizes() [2]int {
	return [2]int{m.spans[0].n, m.spans[1].n}
}

// Pending returns the generations of waiting children (first children only), for
// tests and gauges that look at them. Read only.
func (m *Matcher[P, C]) Pending() *[2]map[uint64]C {
	return &m.pending
}
