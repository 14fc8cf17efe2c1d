package badgerstore

import (
	"container/list"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// decodedBlock is a block unmarshaled once, read-only, with its spans grouped by trace.
type decodedBlock struct {
	td     ptrace.Traces
	traces map[pcommon.TraceID][]spanRef // slices of one backing array; gid unused
	size   int64
}

func newDecodedBlock(td ptrace.Traces, rawLen int) *decodedBlock {
	td.MarkReadOnly() // shared by readers: any attempt to change it panics
	var (
		gids  = map[pcommon.TraceID]int32{}
		refs  = make([]spanRef, 0, td.SpanCount())
		count []int32
	)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				id := spans.At(k).TraceID()
				gid, ok := gids[id]
				if !ok {
					gid = int32(len(count))
					gids[id] = gid
					count = append(count, 0)
				}
				count[gid]++
				refs = append(refs, spanRef{gid: gid, rs: int32(i), ss: int32(j), sp: int32(k)})
			}
		}
	}
	// Counting sort by trace, keeping span order within a trace.
	offs := make([]int32, len(count)+1)
	for g, c := range count {
		offs[g+1] = offs[g] + c
	}
	sorted := make([]spanRef, len(refs))
	next := append([]int32(nil), offs[:len(count)]...)
	for _, r := range refs {
		sorted[next[r.gid]] = r
		next[r.gid]++
	}
	b := &decodedBlock{td: td, traces: make(map[pcommon.TraceID][]spanRef, len(gids)), size: 6 * int64(rawLen)}
	for id, g := range gids {
		b.traces[id] = sorted[offs[g]:offs[g+1]:offs[g+1]]
	}
	return b
}

// blockCache is a least-recently-used cache of decoded blocks, bounded by their size.
// Blocks are immutable (their key is their content hash), so a cached block is never
// stale.
type blockCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // of *cacheEntry, most recent first
	byRef map[blockRef]*list.Element
	// floor: blocks of buckets below it are being dropped by retention and are
	// neither kept nor admitted, so a cached copy cannot outlive its block on disk.
	floor uint32
}

type cacheEntry struct {
	ref blockRef
	blk *decodedBlock
}

func newBlockCache(maxBytes int64) *blockCache {
	return &blockCache{max: maxBytes, order: list.New(), byRef: map[blockRef]*list.Element{}}
}

func (c *blockCache) get(ref blockRef) *decodedBlock {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byRef[ref]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).blk
}

func (c *blockCache) put(ref blockRef, blk *decodedBlock) {
	if blk.size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref.bucket < c.floor {
		return
	}
	if e, ok := c.byRef[ref]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byRef[ref] = c.order.PushFront(&cacheEntry{ref: ref, blk: blk})
	c.size += blk.size
	for c.size > c.max {
		e := c.order.Back()
		ce := e.Value.(*cacheEntry)
		c.order.Remove(e)
		delete(c.byRef, ce.ref)
		c.size -= ce.blk.size
	}
}

// dropBelow evicts the blocks of every bucket below floor and refuses them from now on.
func (c *blockCache) dropBelow(floor uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if floor <= c.floor {
		return
	}
	c.floor = floor
	for ref, e := range c.byRef {
		if ref.bucket < floor {
			c.order.Remove(e)
			delete(c.byRef, ref)
			c.size -= e.Value.(*cacheEntry).blk.size
		}
	}
}
