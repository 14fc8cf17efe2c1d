package analytics

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/spanmatch"
	"github.com/spoortrace/spoor/storage"
)

// The service graph: spanmatch matches every span to its parent span whichever batch
// (and whichever order) they arrive in, each waiting one to two EdgeWaits in tables
// bounded by MaxEdgeSpans. A parent and child of two services are a call between
// them; a client span naming a peer that no span of another service answered is a
// call to that peer.

const (
	maxNames = 1 << 16 // interned service and peer names
	maxEdges = 1 << 16 // distinct (minute, parent, child, kind) between two flushes
)

// gSpan is the service graph's part of a remembered span.
type gSpan struct {
	dur          int64
	adj          float64
	peer, minute uint32
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

	m *spanmatch.Matcher[gSpan, gChild]

	edges  map[edgeKey]*edgeAgg // since the last flush
	totals map[pairKey][2]float64

	matched, unmatched, peerCalls, dropped int64
	touched                                uint64 // what Touch read; kept so that the reads are made
}

func newGraph(wait time.Duration, capacity int, now time.Time) *graph {
	g := &graph{names: []string{""}, ids: map[string]uint32{}, edges: map[edgeKey]*edgeAgg{}, totals: map[pairKey][2]float64{}}
	g.m = spanmatch.New(wait, capacity, capacity, now, spanmatch.Hooks[gSpan, gChild]{
		Link: g.link, Unanswered: g.peerCall, Orphans: func(n int64) { g.unmatched += n }})
	return g
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
	g.m.Tick(now)
	g.touched += g.m.Touch(func(yield func(uint64) bool) {
		for i := range recs {
			if !yield(recs[i].key) {
				return
			}
		}
	})
	for i := range recs {
		r := &recs[i]
		svc := svcIDs[r.res]
		e := spanmatch.Span[gSpan]{Data: gSpan{dur: r.dur, adj: r.adj, minute: r.minute}, Svc: svc, Kind: r.kind}
		if r.err {
			e.Flags |= spanmatch.Error
		}
		if r.peer != "" {
			if id := g.intern(r.peer); id != 0 && id != svc {
				e.Data.peer, e.Flags = id, e.Flags|spanmatch.Peer
			}
		}
		g.m.Put(r.key, e)
	}
	for i := range recs {
		r := &recs[i]
		if g.m.Awaited(r.key) {
			if p, ok := g.m.Lookup(r.key); ok {
				g.matched += g.m.Claim(r.key, p)
			}
		}
		if r.parent == 0 {
			continue
		}
		c := gChild{svc: svcIDs[r.res], minute: r.minute, kind: r.kind, err: r.err, dur: r.dur, adj: r.adj}
		if g.m.Match(r.parent, c) {
			g.matched++
		}
	}
}

// link counts the call parent → child when their services differ.
func (g *graph) link(p spanmatch.Span[gSpan], c gChild) bool {
	if p.Svc == c.svc || p.Svc == 0 || c.svc == 0 {
		return false
	}
	kind := storage.EdgeRequest
	if p.Kind == uint8(ptrace.SpanKindProducer) && c.kind == uint8(ptrace.SpanKindConsumer) {
		kind = storage.EdgeMessaging
	}
	isErr := c.err || (isCaller(p.Kind) && p.Flags&spanmatch.Error != 0)
	lat := c.dur
	if isCaller(p.Kind) {
		lat = p.Data.dur
	}
	g.count(edgeKey{minute: c.minute, parent: p.Svc, child: c.svc, kind: kind}, c.adj, isErr, lat)
	return true
}

// peerCall counts a client span that no span answered as a call to its peer.
func (g *graph) peerCall(e spanmatch.Span[gSpan]) {
	g.peerCalls++
	g.count(edgeKey{minute: e.Data.minute, parent: e.Svc, child: e.Data.peer, kind: storage.EdgePeer}, e.Data.adj,
		e.Flags&spanmatch.Error != 0, e.Data.dur)
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
