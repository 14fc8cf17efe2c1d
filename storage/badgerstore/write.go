package badgerstore

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// maxConflictRetries bounds retries of a transaction that lost an optimistic race on a
// trace summary; each retry re-reads the summaries, so it converges quickly.
const maxConflictRetries = 64

// spanRef locates a span in a ptrace.Traces; gid numbers its trace in the batch.
type spanRef struct {
	gid, rs, ss, sp int32
}

type fieldKey struct {
	hash   uint64
	bucket uint32
}

// batchPost is one (field, bucket, trace) of a batch before grouping into postings;
// group numbers its (field, bucket).
type batchPost struct {
	group       int32
	row         uint32
	first, last uint64
}

type catalogEntry struct {
	key     []byte
	service string // set for a service entry
	op      opKey  // set for an operation entry
	isOp    bool
	val     valueKey // set for an attribute value entry
	isVal   bool
}

// writeScratch is reused across batches to keep per-span work free of allocations.
type writeScratch struct {
	refs []spanRef
	// refsSorted and gidEnd are sortRefsByTrace's room.
	refsSorted []spanRef
	gidEnd     []int32
	groups     map[pcommon.TraceID]int32
	rows       []tableRow  // per trace (gid)
	sums       []summary   // per trace (gid)
	posts      []batchPost // grouped by (field, bucket), rows ascending within a group
	tmp        []batchPost // per trace, one per field it carries, in trace order
	ents       []postingEntry
	gkeys      []fieldKey // per group
	gcount     []int32    // per group, then its offset into posts
	gmap       fieldTable // fieldKey → group
	// Per group: the last trace (gid) that carries it, and where in tmp its post is.
	gLast []int32
	gPost []int32
	gid   int32 // the trace being planned

	pbuf       []byte // posting values of the batch
	pouts      []postingOut
	poffs      [][2]int
	resService []string // per resource
	resSvcHash []uint64 // per resource
	resErrHash []uint64 // per resource: its service's error field
	resOKHash  []uint64 // per resource: its service's status OK field
	resOff     []int32  // per resource, into hashes; len = resources + 1
	scopeFirst []int32  // per resource, its first scope's number
	scopeOff   []int32  // per scope, into hashes; len = scopes + 1
	hashes     []uint64 // indexable attribute hashes of resources, then of scopes
	h          fieldHasher
	seenSvc    map[string]struct{}
	seenOp     map[uint64]struct{} // by opHash
	// opFresh caches, by opHash, an operation's catalog expiry as last read from the
	// store's catalog, when that needed no refresh: most of a batch's operations are
	// known ones, and looking them up by hash skips hashing and comparing two strings
	// in the store's map (a third of the catalog check's cost, and the check was 6% of
	// the store's write CPU). It outlives the batch, for the store whose id is
	// opFreshOf (scratches are shared by every store of the process); it is cleared
	// when it grows large.
	opFresh     map[uint64]int64
	opFreshOf   uint64
	seenVal     map[valueKey]struct{}
	vals        []valueKey // cataloged attribute values of the batch
	valKeys     *valueKeys
	arena       []byte
	blk         blockScratch
	badgerEntry []badger.Entry
	// resAttrs holds strings of the batch being written; release clears it so the
	// pool keeps no reference into a caller's spans.
	resAttrs [][]attrHash // per resource: its previous span's attributes
	deps     []depRec     // per span, for the dependency matcher
	depSvc   []uint32     // per resource, interned service
}

var scratchPool = sync.Pool{New: func() any {
	return &writeScratch{
		groups:  map[pcommon.TraceID]int32{},
		seenSvc: map[string]struct{}{},
		seenOp:  map[uint64]struct{}{},
		opFresh: map[uint64]int64{},
		seenVal: map[valueKey]struct{}{},
	}
}}

// valuePool holds compressed block buffers; Badger copies values at commit.
var valuePool = sync.Pool{New: func() any { return new([]byte) }}

func (w *writeScratch) release() {
	clear(w.groups)
	w.gmap.reset()
	clear(w.seenSvc)
	clear(w.seenVal)
	w.vals, w.valKeys = w.vals[:0], nil
	clear(w.seenOp)
	clear(w.resService) // do not keep the caller's strings alive
	w.refs = w.refs[:0]
	w.rows = w.rows[:0]
	w.posts = w.posts[:0]
	w.resService = w.resService[:0]
	for i := range w.sums {
		w.sums[i].reset()
		w.sums[i].rootService, w.sums[i].rootName = "", ""
		clear(w.sums[i].services[:cap(w.sums[i].services)])
	}
	clear(w.badgerEntry)
	for i := range w.resAttrs {
		clear(w.resAttrs[i][:cap(w.resAttrs[i])])
		w.resAttrs[i] = w.resAttrs[i][:0]
	}
	clear(w.deps) // peer names point into the caller's spans
	w.deps = w.deps[:0]
	scratchPool.Put(w)
}

// serviceNameKey is the resource attribute naming a span's service.
const serviceNameKey = "service.name"

func serviceOf(r pcommon.Resource) string {
	if v, ok := r.Attributes().Get(serviceNameKey); ok {
		return v.AsString()
	}
	return ""
}

// WriteTraces stores td durably; see storage.Writer for the contract.
func (s *Store) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	return s.writeTraces(ctx, td, nil)
}

// WriteTracesEncoded implements storage.EncodedWriter: raw, the TracesData encoding of
// td, is stored as the block instead of td encoded again.
func (s *Store) WriteTracesEncoded(ctx context.Context, td ptrace.Traces, raw []byte) error {
	return s.writeTraces(ctx, td, raw)
}

func (s *Store) writeTraces(ctx context.Context, td ptrace.Traces, raw []byte) error {
	w := scratchPool.Get().(*writeScratch)
	defer w.release()

	// Validate everything before preparing anything, so bad input stores nothing.
	rss := td.ResourceSpans()
	var lastID pcommon.TraceID
	lastGid := int32(-1)
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				id := sp.TraceID()
				if id.IsEmpty() {
					spanID := sp.SpanID()
					return &storage.InvalidInputError{Reason: fmt.Sprintf("span %q (span ID %s) has an all-zero trace ID", sp.Name(), hex.EncodeToString(spanID[:]))}
				}
				if spanID := sp.SpanID(); spanID.IsEmpty() {
					return &storage.InvalidInputError{Reason: fmt.Sprintf("span %q of trace %s has an all-zero span ID", sp.Name(), hex.EncodeToString(id[:]))}
				}
				gid := lastGid
				if gid < 0 || id != lastID {
					var ok bool
					gid, ok = w.groups[id]
					if !ok {
						gid = int32(len(w.rows))
						w.groups[id] = gid
						w.rows = append(w.rows, tableRow{id: id})
					}
					lastID, lastGid = id, gid
				}
				w.refs = append(w.refs, spanRef{gid: gid, rs: int32(i), ss: int32(j), sp: int32(k)})
			}
		}
	}
	if len(w.refs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write traces: %w", err)
	}
	now := time.Now()
	catalog := s.collectCatalog(w, td, now)
	return s.writeBlock(ctx, w, td, raw, catalog, now)
}

// writeBlock plans, encodes and commits td as one block; raw, when not nil, is td's
// encoding already.
func (s *Store) writeBlock(ctx context.Context, w *writeScratch, td ptrace.Traces, raw []byte, catalog []catalogEntry, now time.Time) error {
	w.valKeys = s.values.keys.Load()
	// Each span's trace, in the batch's order, before planFields sorts w.refs by trace:
	// the block's chunks are cut by it.
	w.blk.gids = w.blk.gids[:0]
	for _, r := range w.refs {
		w.blk.gids = append(w.blk.gids, r.gid)
	}
	s.planFields(w, td)
	catalog = s.collectValues(w, catalog, now)
	remember := catalog
	// A block's transaction is three keys (block, trace table, log entry; the first two
	// values go to the value log) plus the batch's new catalog names. A batch naming
	// thousands of new operations writes its names in transactions of their own first:
	// names without spans are harmless, and a retry writes them again.
	if len(catalog) > maxCatalogPerBlock {
		if err := s.writeCatalog(ctx, catalog, s.expiresAt(now)); err != nil {
			return err
		}
		catalog = nil
	}

	// The batch as it came, marshaled once (td is read-only and may be shared), unless
	// the caller had its encoding.
	if raw == nil {
		var m ptrace.ProtoMarshaler
		var err error
		if raw, err = m.MarshalTraces(td); err != nil {
			return fmt.Errorf("encode block: %w", err)
		}
	}
	ref := blockRef{hash: xxhash.Sum64(raw)}
	var latest uint64
	for _, r := range w.rows {
		latest = max(latest, r.maxStart)
	}
	ref.bucket = bucketOf(latest)
	bufp := valuePool.Get().(*[]byte)
	value := s.encodeBlock((*bufp)[:0], raw, w.rows, &w.blk)
	defer func() {
		*bufp = value[:0]
		valuePool.Put(bufp)
	}()
	p := w.buildPlan(ref, value)
	p.seq = s.idx.allocSeq()
	var logKey [9]byte
	p.logKey = appendLogKey(logKey[:0], p.seq)

	err := s.commit(ctx, w, p, catalog, s.expiresAt(now))
	if err != nil || p.dup {
		s.idx.done(p.seq)
	}
	if err != nil {
		return err
	}
	s.rememberCatalog(remember, now)
	if p.dup {
		s.blocksDeduped.Add(1)
		return nil
	}
	// Searchable only now, after the commit: a reader never sees part of a batch.
	s.idx.publish(p.seq, ref, len(w.refs), p.posts)
	s.blocksWritten.Add(1)
	s.spansWritten.Add(int64(len(w.refs)))
	if !s.opts.NoDependencies {
		s.deps.observe(w, now)
	}
	s.maybeFlush()
	return nil
}

// sortRefsByTrace orders w.refs by trace (gid, dense from 0), keeping the batch's order
// within a trace: a counting sort, linear, where a stable comparison sort of a batch's
// 512 spans cost 80 µs (a tenth of planFields on storebench).
func (w *writeScratch) sortRefsByTrace() {
	n := len(w.rows)
	w.gidEnd = append(w.gidEnd[:0], make([]int32, n+1)...)
	for _, r := range w.refs {
		w.gidEnd[r.gid+1]++
	}
	for g := 1; g <= n; g++ {
		w.gidEnd[g] += w.gidEnd[g-1]
	}
	sorted := slices.Grow(w.refsSorted[:0], len(w.refs))[:len(w.refs)]
	for _, r := range w.refs {
		sorted[w.gidEnd[r.gid]] = r
		w.gidEnd[r.gid]++
	}
	w.refs, w.refsSorted = sorted, w.refs
}

// planFields computes, per trace, its summary, its table row and its index fields.
func (s *Store) planFields(w *writeScratch, td ptrace.Traces) {
	w.sortRefsByTrace()
	w.prepareResources(td)
	if n := len(w.rows); cap(w.sums) < n {
		w.sums = append(w.sums[:cap(w.sums)], make([]summary, n-cap(w.sums))...)
	}
	w.sums = w.sums[:len(w.rows)]
	w.tmp, w.gkeys, w.gcount = w.tmp[:0], w.gkeys[:0], w.gcount[:0]
	w.gLast, w.gPost = w.gLast[:0], w.gPost[:0]
	w.gmap.reset()
	w.deps = w.deps[:0]
	allHash := w.h.all()
	rss := td.ResourceSpans()
	for start := 0; start < len(w.refs); {
		gid := w.refs[start].gid
		end := start + 1
		for end < len(w.refs) && w.refs[end].gid == gid {
			end++
		}
		sum := &w.sums[gid]
		sum.reset()
		w.gid = gid
		var (
			curRS, curSS        int32 = -1, -1
			spans               ptrace.SpanSlice
			service, lastName   string
			svcHash, opHash     uint64
			svcSpans, svcErrors uint32
			svcOK               uint32
			maxStart            uint64
			resH, scopeH        []uint64
		)
		flushService := func() {
			if svcSpans > 0 {
				sum.addService(service, svcSpans, svcErrors, svcOK)
			}
			svcSpans, svcErrors, svcOK = 0, 0, 0
		}
		for i, r := range w.refs[start:end] {
			if r.rs != curRS {
				flushService()
				curRS, curSS = r.rs, -1
				service, svcHash = w.resService[r.rs], w.resSvcHash[r.rs]
				resH = w.hashes[w.resOff[r.rs]:w.resOff[r.rs+1]]
				lastName, opHash = "", 0
			}
			if r.ss != curSS {
				curSS = r.ss
				spans = rss.At(int(r.rs)).ScopeSpans().At(int(r.ss)).Spans()
				sc := w.scopeFirst[r.rs] + r.ss
				scopeH = w.hashes[w.scopeOff[sc]:w.scopeOff[sc+1]]
			}
			sp := spans.At(int(r.sp))
			st, en := uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp())
			b := bucketOf(st)
			if i == 0 {
				sum.minStart, sum.maxEnd, maxStart = st, en, st
			} else {
				sum.minStart = min(sum.minStart, st)
				sum.maxEnd = max(sum.maxEnd, en)
				maxStart = max(maxStart, st)
			}
			sum.spans++
			svcSpans++
			code := sp.Status().Code()
			failed := code == ptrace.StatusCodeError
			if failed {
				sum.errors++
				svcErrors++
			}
			if !s.opts.NoDependencies {
				w.addDepRec(sp, w.rows[gid].id, r.rs, b)
			}
			name := sp.Name()
			if sp.ParentSpanID().IsEmpty() {
				sum.offerRoot(st, sp.SpanID(), service, name)
			}
			w.addField(allHash, b, st)
			if service != "" {
				w.addField(svcHash, b, st)
				if opHash == 0 || name != lastName {
					lastName, opHash = name, w.h.operation(service, name)
				}
				w.addField(opHash, b, st)
			}
			if failed {
				w.addField(w.resErrHash[r.rs], b, st)
			} else if code == ptrace.StatusCodeOk {
				svcOK++
				w.addField(w.resOKHash[r.rs], b, st)
			}
			for _, h := range resH {
				w.addField(h, b, st)
			}
			for _, h := range scopeH {
				w.addField(h, b, st)
			}
			w.addSpanAttrFields(r.rs, service, sp.Attributes(), b, st)
			if evs := sp.Events(); evs.Len() > 0 {
				for e := 0; e < evs.Len(); e++ {
					w.addAttrFields(service, evs.At(e).Attributes(), b, st)
				}
			}
			if links := sp.Links(); links.Len() > 0 {
				for l := 0; l < links.Len(); l++ {
					w.addAttrFields(service, links.At(l).Attributes(), b, st)
				}
			}
		}
		flushService()
		w.rows[gid].minStart, w.rows[gid].maxStart = sum.minStart, maxStart
		start = end
	}
	// Counting sort by group; stable, so rows stay ascending within a group.
	off := int32(0)
	for g, c := range w.gcount {
		w.gcount[g] = off
		off += c
	}
	w.posts = slices.Grow(w.posts[:0], len(w.tmp))[:len(w.tmp)]
	for _, bp := range w.tmp {
		w.posts[w.gcount[bp.group]] = bp
		w.gcount[bp.group]++
	}
}

// prepareResources hashes every resource's and scope's indexable attributes once.
func (w *writeScratch) prepareResources(td ptrace.Traces) {
	w.hashes = w.hashes[:0]
	w.resOff, w.scopeOff, w.scopeFirst = w.resOff[:0], w.scopeOff[:0], w.scopeFirst[:0]
	w.resService, w.resSvcHash, w.resErrHash = w.resService[:0], w.resSvcHash[:0], w.resErrHash[:0]
	w.resOKHash = w.resOKHash[:0]
	rss := td.ResourceSpans()
	for len(w.resAttrs) < rss.Len() {
		w.resAttrs = append(w.resAttrs, nil)
	}
	for i := 0; i < rss.Len(); i++ {
		res := rss.At(i).Resource()
		svc := serviceOf(res)
		w.resService = append(w.resService, svc)
		w.resSvcHash = append(w.resSvcHash, w.h.service(svc))
		w.resErrHash = append(w.resErrHash, w.h.errors(svc))
		w.resOKHash = append(w.resOKHash, w.h.statusOK(svc))
		w.resOff = append(w.resOff, int32(len(w.hashes)))
		// Not service.name: the service's own field, on every span of the resource,
		// already lists the traces that carry it (search looks an equality on it up
		// there, drivingFields), and it was one field in six of a telemetrygen span.
		for k, v := range res.Attributes().All() {
			if str, ok := indexableValue(v); ok && !(k == serviceNameKey && str == svc && svc != "") {
				w.hashes = append(w.hashes, w.h.attribute(svc, k, str))
			}
		}
		if w.valKeys != nil {
			for k, v := range res.Attributes().All() {
				if str, ok := indexableValue(v); ok && w.valKeys.has(k) {
					w.vals = append(w.vals, valueKey{service: svc, key: k, value: str})
				}
			}
		}
	}
	w.resOff = append(w.resOff, int32(len(w.hashes)))
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		w.scopeFirst = append(w.scopeFirst, int32(len(w.scopeOff)))
		for j := 0; j < sss.Len(); j++ {
			w.scopeOff = append(w.scopeOff, int32(len(w.hashes)))
			w.hashes = w.attrHashes(w.hashes, w.resService[i], sss.At(j).Scope().Attributes())
		}
	}
	w.scopeOff = append(w.scopeOff, int32(len(w.hashes)))
}

// addField notes that a span of the trace being planned, starting at start in bucket b,
// carries field hash.
func (w *writeScratch) addField(hash uint64, b uint32, start uint64) {
	w.addGroup(w.group(fieldKey{hash: hash, bucket: b}), start)
}

// group returns the batch's group of field key k, a new one when k is new.
func (w *writeScratch) group(k fieldKey) int32 {
	g, ok := w.gmap.get(k)
	if !ok {
		g = int32(len(w.gkeys))
		w.gmap.put(k, g)
		w.gkeys = append(w.gkeys, k)
		w.gcount = append(w.gcount, 0)
		w.gLast = append(w.gLast, -1)
		w.gPost = append(w.gPost, 0)
	}
	return g
}

// addGroup notes that a span of the trace being planned, starting at start, carries the
// field of group g: the trace's post for g, made at its first such span, spans the
// starts of them all. Traces are planned one after another, so a group's posts come in
// trace order. (Collecting each trace's fields first, and mapping them to groups at the
// trace's end, looked each field up twice, the first time in a per-trace table that was
// cleared for every trace: with spans of five services a trace carries some sixty
// fields.)
func (w *writeScratch) addGroup(g int32, start uint64) {
	if w.gLast[g] == w.gid {
		p := &w.tmp[w.gPost[g]]
		p.first = min(p.first, start)
		p.last = max(p.last, start)
		return
	}
	w.gLast[g], w.gPost[g] = w.gid, int32(len(w.tmp))
	w.gcount[g]++
	w.tmp = append(w.tmp, batchPost{group: g, row: uint32(w.gid), first: start, last: start})
}

// attrHashes appends the index hashes of the indexable attributes of m.
func (w *writeScratch) attrHashes(dst []uint64, service string, m pcommon.Map) []uint64 {
	for k, v := range m.All() {
		if str, ok := indexableValue(v); ok {
			dst = append(dst, w.h.attribute(service, k, str))
		}
	}
	return dst
}

// addSpanAttrFields is addAttrFields for span attributes, which mostly repeat from one
// span of a resource to the next (the same keys, many equal values — though SDKs that
// keep them in a Go map emit them in a different order each time): an attribute equal to
// one of the previous span's of the same resource (spans are visited trace by trace, so
// consecutive spans are often of different services) reuses its hash, and comparing
// short strings costs a fraction of hashing them.
//
// The resource's list is brought up to date in place, written only where the span
// differs (a moved attribute is swapped into its place, a new one put there and the one
// it displaces kept behind for the rest of the span), so that a span repeating its
// predecessor's attributes writes nothing. Building a fresh list per span instead stored
// four string pointers per attribute, each through the GC's write barrier while a
// collection runs — most of the time under ingest, whose decoding allocates at a high
// rate: in spoor's profiles that store was a fifth of this function's CPU.
func (w *writeScratch) addSpanAttrFields(rs int32, service string, m pcommon.Map, b uint32, start uint64) {
	prev := w.resAttrs[rs]
	grown := false
	i := 0
	for k, v := range m.All() {
		str, ok := indexableValue(v)
		if !ok {
			continue
		}
		if !(i < len(prev) && prev[i].key == k && prev[i].value == str) {
			// Entries before i are this span's; after it, the previous span's not yet
			// met and those displaced.
			found := false
			for j := i + 1; j < len(prev); j++ {
				if prev[j].key == k && prev[j].value == str {
					found = true
					prev[i], prev[j] = prev[j], prev[i]
					break
				}
			}
			if !found {
				e := attrHash{key: k, value: str, hash: w.h.attribute(service, k, str), group: -1}
				if i < len(prev) {
					prev = append(prev, prev[i])
					prev[i] = e
				} else {
					prev = append(prev, e)
				}
				grown = true
			}
		}
		// The attribute's group, looked up once per batch and bucket for a resource's
		// spans that repeat it.
		e := &prev[i]
		if e.group < 0 || e.bucket != b {
			e.group, e.bucket = w.group(fieldKey{hash: e.hash, bucket: b}), b
		}
		w.addGroup(e.group, start)
		if w.valKeys != nil && w.valKeys.has(k) {
			w.vals = append(w.vals, valueKey{service: service, key: k, value: str})
		}
		i++
	}
	if grown || i != len(prev) {
		w.resAttrs[rs] = prev[:i]
	}
}

// attrHash remembers an attribute's field hash for the next span of its resource in
// the batch, and its group in bucket.
type attrHash struct {
	key, value string
	hash       uint64
	group      int32 // -1 until looked up
	bucket     uint32
}

func (w *writeScratch) addAttrFields(service string, m pcommon.Map, b uint32, start uint64) {
	for k, v := range m.All() {
		if str, ok := indexableValue(v); ok {
			w.addField(w.h.attribute(service, k, str), b, start)
		}
	}
}

// indexableValue returns v as a string when it is short enough to index, checking
// lengths before formatting where the type allows.
func indexableValue(v pcommon.Value) (string, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		str := v.Str()
		return str, len(str) <= maxIndexedValue
	case pcommon.ValueTypeBytes:
		if v.Bytes().Len()*4/3 > maxIndexedValue {
			return "", false
		}
	case pcommon.ValueTypeEmpty:
		return "", true
	case pcommon.ValueTypeInt:
		// Status codes, ports, counts: formatting them allocated a string per span.
		if i := v.Int(); i >= 0 && i < int64(len(smallInts)) {
			return smallInts[i], true
		}
	}
	str := v.AsString()
	return str, len(str) <= maxIndexedValue
}

// smallInts are the decimal strings of 0 … 1023, as AsString formats them.
var smallInts = func() (t [1024]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// maxCatalogPerBlock bounds the catalog keys a block's transaction carries, far below
// Badger's transaction limits (thousands of entries even with a small memtable).
const maxCatalogPerBlock = 256

// writeCatalog writes catalog keys in transactions of maxCatalogPerBlock.
func (s *Store) writeCatalog(ctx context.Context, catalog []catalogEntry, exp uint64) error {
	for len(catalog) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write catalog: %w", err)
		}
		n := min(len(catalog), maxCatalogPerBlock)
		s.retention.dropMu.RLock()
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, c := range catalog[:n] {
				if err := txn.SetEntry(&badger.Entry{Key: c.key, ExpiresAt: exp}); err != nil {
					return err
				}
			}
			return nil
		})
		s.retention.dropMu.RUnlock()
		if err != nil {
			return fmt.Errorf("write %d catalog names: %w", n, err)
		}
		catalog = catalog[n:]
	}
	return nil
}

// blockPlan is everything one block writes, prepared outside the transaction. Its
// slices point into the scratch arena.
type blockPlan struct {
	ref                blockRef
	seq                uint64
	blockKey, tableKey []byte
	logKey, logValue   []byte
	value, table       []byte
	posts              []postingOut // for the search index, after the commit
	dup                bool
}

func (w *writeScratch) buildPlan(ref blockRef, value []byte) *blockPlan {
	p := &blockPlan{ref: ref, value: value}
	a := w.arena[:0]
	a = appendBlockKey(a, prefixBlock, ref)
	a = appendBlockKey(a, prefixTable, ref)
	a = appendTable(a, w.rows)
	tableEnd := len(a)
	logStart := len(a)
	a = binary.BigEndian.AppendUint32(a, ref.bucket)
	a = binary.BigEndian.AppendUint64(a, ref.hash)
	w.arena = a
	p.blockKey = a[0:blockKeyLen:blockKeyLen]
	p.tableKey = a[blockKeyLen : 2*blockKeyLen : 2*blockKeyLen]
	p.table = a[2*blockKeyLen : tableEnd : tableEnd]
	p.logValue = a[logStart:len(a):len(a)]
	p.posts = w.buildPostings(ref)
	return p
}

// buildPostings encodes the block's postings, one per (field, bucket), for the index.
// Their values point into the scratch's posting buffer.
func (w *writeScratch) buildPostings(ref blockRef) []postingOut {
	a := w.pbuf[:0]
	w.pouts = w.pouts[:0]
	offs := w.poffs[:0]
	for i := 0; i < len(w.posts); {
		j := i + 1
		last := w.posts[i].last
		for j < len(w.posts) && w.posts[j].group == w.posts[i].group {
			last = max(last, w.posts[j].last)
			j++
		}
		k := w.gkeys[w.posts[i].group]
		w.ents = w.ents[:0]
		for _, bp := range w.posts[i:j] {
			w.ents = append(w.ents, postingEntry{row: bp.row, first: bp.first, last: bp.last})
		}
		v0 := len(a)
		a = appendPosting(a, ref.bucket-k.bucket, w.ents, w.rows)
		offs = append(offs, [2]int{v0, len(a)})
		w.pouts = append(w.pouts, postingOut{bucket: k.bucket, field: k.hash, maxStart: last})
		i = j
	}
	// The traces' summary fragments: the postings of their own fields (FORMAT.md), in
	// the block's bucket.
	for i := range w.rows {
		id := &w.rows[i].id
		v0 := len(a)
		a = w.sums[i].appendFragment(a)
		offs = append(offs, [2]int{v0, len(a)})
		w.pouts = append(w.pouts, postingOut{bucket: ref.bucket, field: w.h.trace(*id), maxStart: w.rows[i].maxStart, trace: true})
	}
	for i, o := range offs {
		w.pouts[i].val = a[o[0]:o[1]:o[1]]
	}
	w.pbuf, w.poffs = a, offs
	return w.pouts
}

// commit writes the plan in one transaction, retrying lost optimistic races.
func (s *Store) commit(ctx context.Context, w *writeScratch, p *blockPlan, catalog []catalogEntry, exp uint64) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write traces: %w", err)
		}
		// Retention's DropPrefix blocks Badger's writes, which would then fail with
		// ErrBlockedWrites: the read lock makes a commit wait for the drop instead.
		s.retention.dropMu.RLock()
		err := s.db.Update(func(txn *badger.Txn) error { return s.apply(txn, w, p, catalog, exp) })
		s.retention.dropMu.RUnlock()
		switch {
		case err == nil:
			s.commits.Add(1)
			return nil
		case errors.Is(err, badger.ErrConflict) && attempt < maxConflictRetries:
			s.conflicts.Add(1)
			continue
		case errors.Is(err, badger.ErrTxnTooBig):
			return err
		default:
			return fmt.Errorf("commit block of %d traces: %w", len(w.rows), err)
		}
	}
}

func (s *Store) apply(txn *badger.Txn, w *writeScratch, p *blockPlan, catalog []catalogEntry, exp uint64) error {
	n := len(catalog)
	if cap(w.badgerEntry) < n+3+len(w.rows) {
		w.badgerEntry = make([]badger.Entry, 0, n+3+len(w.rows))
	}
	ents := w.badgerEntry[:0]
	set := func(k, v []byte) error {
		ents = append(ents, badger.Entry{Key: k, Value: v, ExpiresAt: exp})
		return txn.SetEntry(&ents[len(ents)-1])
	}
	for _, c := range catalog {
		if err := set(c.key, nil); err != nil {
			return err
		}
	}
	p.dup = false
	_, err := txn.Get(p.blockKey)
	if err == nil {
		// Identical block already stored with its table, postings and summaries: a retry.
		p.dup = true
		return nil
	}
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return fmt.Errorf("read block %x: %w", p.blockKey, err)
	}
	if err := set(p.blockKey, p.value); err != nil {
		return err
	}
	if err := set(p.tableKey, p.table); err != nil {
		return err
	}
	// The block log entry: Open re-indexes blocks that no flushed segment covers.
	if err := set(p.logKey, p.logValue); err != nil {
		return err
	}
	return nil
}

// collectCatalog returns the catalog keys this batch must write: names that are new, or
// whose key expires within half the retention.
func (s *Store) collectCatalog(w *writeScratch, td ptrace.Traces, now time.Time) []catalogEntry {
	refreshBefore := now.Add(s.opts.Retention / 2).Unix()
	var out []catalogEntry
	if w.opFreshOf != s.id {
		clear(w.opFresh)
		w.opFreshOf = s.id
	}
	s.catalogMu.RLock()
	defer s.catalogMu.RUnlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		svc := serviceOf(rs.Resource())
		if svc == "" || len(svc) > maxNameLen {
			continue
		}
		if _, seen := w.seenSvc[svc]; !seen {
			w.seenSvc[svc] = struct{}{}
			if exp, ok := s.services[svc]; !ok || (exp != 0 && exp < refreshBefore) {
				out = append(out, catalogEntry{key: appendServiceKey(nil, svc), service: svc})
			}
		}
		var last opKey
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if len(sp.Name()) > maxNameLen {
					continue
				}
				op := opKey{service: svc, name: sp.Name(), kind: byte(sp.Kind())}
				if op == last {
					continue // the common case: a run of spans of one operation
				}
				last = op
				h := w.opHash(op)
				if exp, ok := w.opFresh[h]; ok && (exp == 0 || exp >= refreshBefore) {
					continue // an expiry only ever moves later
				}
				if _, seen := w.seenOp[h]; seen {
					continue
				}
				w.seenOp[h] = struct{}{}
				if exp, ok := s.operations[op]; !ok || (exp != 0 && exp < refreshBefore) {
					out = append(out, catalogEntry{key: appendOperationKey(nil, op.service, op.kind, op.name), op: op, isOp: true})
				} else {
					if len(w.opFresh) >= maxOpFresh {
						clear(w.opFresh)
					}
					w.opFresh[h] = exp
				}
			}
		}
	}
	return out
}

// maxOpFresh bounds a scratch's opFresh cache.
const maxOpFresh = 1 << 16

// opHash is a 64-bit hash of op: its operation field's hash with its kind mixed in. Two
// operations with one hash would share the cached catalog check, which at 64 bits
// does not happen for any number of operations a store holds.
func (w *writeScratch) opHash(op opKey) uint64 {
	return w.h.operation(op.service, op.name) ^ (uint64(op.kind)+1)*0x9E3779B97F4A7C15
}

func (s *Store) rememberCatalog(entries []catalogEntry, now time.Time) {
	if len(entries) == 0 {
		return
	}
	exp := int64(s.expiresAt(now))
	s.catalogMu.Lock()
	defer s.catalogMu.Unlock()
	for _, e := range entries {
		// Clone: the names point into the caller's td, which we must not keep.
		if e.isVal {
			s.values.remember(valueKey{service: clone(e.val.service), key: clone(e.val.key), value: clone(e.val.value)}, exp)
		} else if e.isOp {
			s.operations[opKey{service: clone(e.op.service), name: clone(e.op.name), kind: e.op.kind}] = exp
		} else {
			s.services[clone(e.service)] = exp
		}
	}
}

func clone(s string) string { return string([]byte(s)) }
