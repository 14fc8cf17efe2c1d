package analytics

import (
	"encoding/binary"
	"math/bits"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// The service graph: every span is remembered for one to two EdgeWaits in a
// two-generation table, so that a child finds its parent whichever batch (and
// whichever order) they arrive in; children whose parent has not come yet wait in a
// second two-generation table. When the previous generation is dropped, its client
// spans that no span of another service answered become calls to their peer. Both
// tables turn over when full, so memory is bounded by MaxEdgeSpans.

const (
	maxNames = 1 << 16 // interned service and peer names
	maxEdges = 1 << 16 // distinct (minute, parent, child, kind) between two flushes
)

const (
	gError    uint8 = 1 << iota // status Error
	gPeer                       // a client or producer span naming an uninstrumented peer
	gAnswered                   // a span of another service answered it
	gServer                     // server or consumer: wins a shared (Zipkin) span ID
)

// gSpan is what the table remembers of a recent span.
type gSpan struct {
	svc, peer uint32
	minute    uint32
	kind      uint8
	flags     uint8
	dur       int64
	adj       float64
}

// gChild is a span waiting for its parent.
type gChild struct {
	svc    uint32
	minute uint32
	kind   uint8
	err    bool
	dur    int64
	adj    float64
}

type edgeKey struct {
	minute, parent, child uint32
	kind                  storage.EdgeKind
}

type edgeAgg struct {
	calls, errors float64
	latency       storage.Histogram
}

type pairKey struct{ parent, child uint32 }

type graph struct {
	names []string // by id; 0 is "none"
	ids   map[string]uint32

	spans   [2]map[uint64]gSpan
	pending [2]map[uint64]gChild
	extra   [2]map[uint64][]gChild
	turned  time.Time
	wait    time.Duration
	cap     int

	edges  map[edgeKey]*edgeAgg // since the last flush
	totals map[pairKey][2]float64

	matched, unmatched, peerCalls, dropped int64
}

func newGraph(wait time.Duration, capacity int, now time.Time) *graph {
	g := &graph{names: []string{""}, ids: map[string]uint32{}, wait: wait, cap: capacity, turned: now,
		edges: map[edgeKey]*edgeAgg{}, totals: map[pairKey][2]float64{}}
	for i := range 2 {
		g.spans[i] = map[uint64]gSpan{}
		g.pending[i] = map[uint64]gChild{}
		g.extra[i] = map[uint64][]gChild{}
	}
	return g
}

// spanKey hashes a trace ID and span ID into 64 bits; never 0.
func spanKey(t pcommon.TraceID, s pcommon.SpanID) uint64 {
	const k0, k1, k2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
	mix := func(a, b uint64) uint64 { hi, lo := bits.Mul64(a, b); return hi ^ lo }
	h := mix(binary.LittleEndian.Uint64(t[:8])^k0, binary.LittleEndian.Uint64(t[8:])^k1)
	h = mix(h^binary.LittleEndian.Uint64(s[:]), k2)
	if h == 0 {
		h = 1
	}
	return h
}

// intern returns the id of name, 0 when empty or past the bound. name may point into
// the caller's spans.
func (g *graph) intern(name string) uint32 {
	if name == "" || len(name) > 1024 {
		return 0
	}
	if id, ok := g.ids[name]; ok {
		return id
	}
	if len(g.names) >= maxNames {
		g.dropped++
		return 0
	}
	name = string([]byte(name))
	id := uint32(len(g.names))
	g.names = append(g.names, name)
	g.ids[name] = id
	return id
}

// peerName is the uninstrumented peer a client or producer span names.
func peerName(m pcommon.Map) string {
	for _, k := range [...]string{"peer.service", "service.peer.name", "server.address"} {
		if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
			return v.Str()
		}
	}
	return ""
}

func isCaller(kind uint8) bool {
	return kind == uint8(ptrace.SpanKindClient) || kind == uint8(ptrace.SpanKindProducer)
}

// observe adds a batch's spans. Every span first, so that a parent in the same batch
// is found whatever the order. Called with the processor's lock held.
func (g *graph) observe(recs []rec, svcIDs []uint32, now time.Time) {
	if now.Sub(g.turned) >= g.wait {
		g.turnSpans()
		g.turnPending()
		g.turned = now
	}
	for i := range recs {
		r := &recs[i]
		if len(g.spans[0]) >= g.cap {
			g.turnSpans()
		}
		svc := svcIDs[r.res]
		e := gSpan{svc: svc, minute: r.minute, kind: r.kind, dur: r.dur, adj: r.adj}
		if r.err {
			e.flags |= gError
		}
		if r.kind == uint8(ptrace.SpanKindServer) || r.kind == uint8(ptrace.SpanKindConsumer) {
			e.flags |= gServer
		}
		if r.peer != "" {
			if id := g.intern(r.peer); id != 0 && id != svc {
				e.peer, e.flags = id, e.flags|gPeer
			}
		}
		if old, ok := g.spans[0][r.key]; ok {
			if old.flags&gServer != 0 && e.flags&gServer == 0 {
				continue // a shared span ID answers as its server side
			}
			if old.svc == svc {
				e.flags |= old.flags & gAnswered
			}
		}
		g.spans[0][r.key] = e
	}
	for i := range recs {
		r := &recs[i]
		svc := svcIDs[r.res]
		if len(g.pending[0])+len(g.pending[1]) > 0 {
			g.claimChildren(r.key)
		}
		if r.parent == 0 {
			continue
		}
		c := gChild{svc: svc, minute: r.minute, kind: r.kind, err: r.err, dur: r.dur, adj: r.adj}
		p, gen, ok := g.lookup(r.parent)
		if !ok {
			g.addPending(r.parent, c)
			continue
		}
		g.matched++
		if g.link(p, c) && p.flags&gPeer != 0 && p.flags&gAnswered == 0 {
			p.flags |= gAnswered
			g.spans[gen][r.parent] = p
		}
	}
}

func (g *graph) lookup(key uint64) (gSpan, int, bool) {
	if e, ok := g.spans[0][key]; ok {
		return e, 0, true
	}
	if e, ok := g.spans[1][key]; ok {
		return e, 1, true
	}
	return gSpan{}, 0, false
}

// link counts the call parent → child when their services differ.
func (g *graph) link(p gSpan, c gChild) bool {
	if p.svc == c.svc || p.svc == 0 || c.svc == 0 {
		return false
	}
	kind := storage.EdgeRequest
	if p.kind == uint8(ptrace.SpanKindProducer) && c.kind == uint8(ptrace.SpanKindConsumer) {
		kind = storage.EdgeMessaging
	}
	isErr := c.err || (isCaller(p.kind) && p.flags&gError != 0)
	lat := c.dur
	if isCaller(p.kind) {
		lat = p.dur
	}
	g.count(edgeKey{minute: c.minute, parent: p.svc, child: c.svc, kind: kind}, c.adj, isErr, lat)
	return true
}

func (g *graph) count(k edgeKey, w float64, isErr bool, lat int64) {
	a, ok := g.edges[k]
	if !ok {
		if len(g.edges) >= maxEdges {
			g.dropped++
			return
		}
		a = &edgeAgg{}
		g.edges[k] = a
	}
	a.calls += w
	if isErr {
		a.errors += w
	}
	a.latency.Add(time.Duration(lat), w)
	pk := pairKey{k.parent, k.child}
	t, seen := g.totals[pk]
	if !seen && len(g.totals) >= maxEdges {
		return
	}
	t[0] += w
	if isErr {
		t[1] += w
	}
	g.totals[pk] = t
}

// claimChildren links the children waiting for key to it.
func (g *graph) claimChildren(key uint64) {
	p, gen, ok := g.lookup(key)
	if !ok {
		return
	}
	answered := false
	take := func(c gChild) {
		g.matched++
		if g.link(p, c) {
			answered = true
		}
	}
	for pg := range 2 {
		c, ok := g.pending[pg][key]
		if !ok {
			continue
		}
		take(c)
		delete(g.pending[pg], key)
		if more, ok := g.extra[pg][key]; ok {
			for _, c := range more {
				take(c)
			}
			delete(g.extra[pg], key)
		}
	}
	if answered && p.flags&gPeer != 0 && p.flags&gAnswered == 0 {
		p.flags |= gAnswered
		g.spans[gen][key] = p
	}
}

func (g *graph) addPending(parent uint64, c gChild) {
	cur := g.pending[0]
	if _, ok := cur[parent]; ok {
		g.extra[0][parent] = append(g.extra[0][parent], c)
		return
	}
	if len(cur) >= g.cap {
		g.turnPending()
		cur = g.pending[0]
	}
	cur[parent] = c
}

// turnSpans drops the previous generation of spans, counting its client spans that
// no span answered as calls to their peer.
func (g *graph) turnSpans() {
	old := g.spans[1]
	for k, e := range old {
		if e.flags&(gPeer|gAnswered) != gPeer {
			continue
		}
		if _, again := g.spans[0][k]; again {
			continue // written again since: decided when that copy leaves
		}
		g.peerCalls++
		g.count(edgeKey{minute: e.minute, parent: e.svc, child: e.peer, kind: storage.EdgePeer}, e.adj, e.flags&gError != 0, e.dur)
	}
	clear(old)
	g.spans[0], g.spans[1] = old, g.spans[0]
}

// turnPending drops the previous generation of waiting children as unmatched.
func (g *graph) turnPending() {
	g.unmatched += int64(len(g.pending[1]))
	for _, more := range g.extra[1] {
		g.unmatched += int64(len(more))
	}
	clear(g.pending[1])
	clear(g.extra[1])
	g.pending[0], g.pending[1] = g.pending[1], g.pending[0]
	g.extra[0], g.extra[1] = g.extra[1], g.extra[0]
}

// drain decides everything still waiting, as if the wait had passed twice.
func (g *graph) drain() {
	for range 2 {
		g.turnSpans()
		g.turnPending()
	}
}

// take returns the edges counted since the last call, by name.
func (g *graph) take() []storage.EdgeRollup {
	if len(g.edges) == 0 {
		return nil
	}
	out := make([]storage.EdgeRollup, 0, len(g.edges))
	for k, a := range g.edges {
		out = append(out, storage.EdgeRollup{Minute: minuteTime(k.minute), Parent: g.names[k.parent], Child: g.names[k.child],
			Kind: k.kind, Calls: a.calls, Errors: a.errors, Latency: a.latency})
	}
	g.edges = map[edgeKey]*edgeAgg{}
	return out
}

func minuteTime(m uint32) time.Time {
	return time.Unix(int64(m)*60, 0).UTC()
}
