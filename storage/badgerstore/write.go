package badgerstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// maxChunkSpans splits one trace's spans of a huge batch into several chunks, so that
// a chunk with its index entries always fits in one Badger transaction.
const maxChunkSpans = 2048

// maxConflictRetries bounds retries of a transaction that lost an optimistic race on a
// trace summary; each retry re-reads the summary, so it converges quickly.
const maxConflictRetries = 64

type spanRef struct {
	gid, rs, ss, sp int32
}

type fieldKey struct {
	hash   uint64
	bucket uint32
}

type fieldEntry struct {
	k           fieldKey
	first, last uint64
}

const linearFields = 32

// chunkPlan is everything one trace chunk writes, prepared outside the transaction.
type chunkPlan struct {
	traceID          pcommon.TraceID
	sum              summary
	arena            []byte // chunk key, summary key, index keys and values
	chunkKey, sumKey []byte
	value            []byte
	index            [][2][]byte // key, value
	dup              bool
}

func (p *chunkPlan) estimate() (size, count int64) {
	const overhead = 24 // Badger's per-entry meta, version and bookkeeping
	size = int64(len(p.chunkKey)+len(p.value)+len(p.sumKey)+256) + 2*overhead
	for _, kv := range p.index {
		size += int64(len(kv[0])+len(kv[1])) + overhead
	}
	return size, int64(len(p.index) + 2)
}

type catalogEntry struct {
	key     []byte
	service string // set for a service entry
	op      opKey  // set for an operation entry
	isOp    bool
}

// writeScratch is reused across batches to keep per-span work free of allocations.
type writeScratch struct {
	refs      []spanRef
	groups    map[pcommon.TraceID]int32
	ids       []pcommon.TraceID
	flist     []fieldEntry
	fields    map[fieldKey]int
	resHash   []uint64
	scopeHash []uint64
	h         fieldHasher
	seenSvc   map[string]struct{}
	seenOp    map[opKey]struct{}
}

var scratchPool = sync.Pool{New: func() any {
	return &writeScratch{
		groups:  map[pcommon.TraceID]int32{},
		fields:  map[fieldKey]int{},
		seenSvc: map[string]struct{}{},
		seenOp:  map[opKey]struct{}{},
	}
}}

func (w *writeScratch) release() {
	clear(w.groups)
	clear(w.fields)
	clear(w.seenSvc)
	clear(w.seenOp)
	w.refs = w.refs[:0]
	w.ids = w.ids[:0]
	scratchPool.Put(w)
}

func serviceOf(r pcommon.Resource) string {
	if v, ok := r.Attributes().Get("service.name"); ok {
		return v.AsString()
	}
	return ""
}

// WriteTraces stores td durably; see storage.Writer for the contract.
func (s *Store) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	w := scratchPool.Get().(*writeScratch)
	defer w.release()

	// Validate everything before preparing anything, so bad input stores nothing.
	rss := td.ResourceSpans()
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
				gid, ok := w.groups[id]
				if !ok {
					gid = int32(len(w.ids))
					w.groups[id] = gid
					w.ids = append(w.ids, id)
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
	slices.SortStableFunc(w.refs, func(a, b spanRef) int { return int(a.gid - b.gid) })

	now := time.Now()
	plans := make([]*chunkPlan, 0, len(w.ids))
	catalog := s.collectCatalog(w, td, now)
	for start := 0; start < len(w.refs); {
		end := start + 1
		for end < len(w.refs) && w.refs[end].gid == w.refs[start].gid && end-start < maxChunkSpans {
			end++
		}
		p, err := s.planChunk(w, td, w.refs[start:end])
		if err != nil {
			return err
		}
		plans = append(plans, p)
		start = end
	}
	if err := s.commitPlans(ctx, plans, catalog, s.expiresAt(now)); err != nil {
		return err
	}
	var spans, chunks, dups int64
	for _, p := range plans {
		if p.dup {
			dups++
			continue
		}
		chunks++
		spans += int64(p.sum.spans)
	}
	s.spansWritten.Add(spans)
	s.chunksWritten.Add(chunks)
	s.chunksDeduped.Add(dups)
	s.rememberCatalog(catalog, now)
	return nil
}

// collectCatalog returns the catalog keys this batch must write: names that are new, or
// whose key expires within half the retention.
func (s *Store) collectCatalog(w *writeScratch, td ptrace.Traces, now time.Time) []catalogEntry {
	refreshBefore := now.Add(s.opts.Retention / 2).Unix()
	var out []catalogEntry
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
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if len(sp.Name()) > maxNameLen {
					continue
				}
				op := opKey{service: svc, name: sp.Name(), kind: byte(sp.Kind())}
				if _, seen := w.seenOp[op]; seen {
					continue
				}
				w.seenOp[op] = struct{}{}
				if exp, ok := s.operations[op]; !ok || (exp != 0 && exp < refreshBefore) {
					out = append(out, catalogEntry{key: appendOperationKey(nil, op.service, op.kind, op.name), op: op, isOp: true})
				}
			}
		}
	}
	return out
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
		if e.isOp {
			s.operations[opKey{service: clone(e.op.service), name: clone(e.op.name), kind: e.op.kind}] = exp
		} else {
			s.services[clone(e.service)] = exp
		}
	}
}

func clone(s string) string { return string([]byte(s)) }

// planChunk encodes one trace chunk and computes its summary and index entries.
func (s *Store) planChunk(w *writeScratch, td ptrace.Traces, refs []spanRef) (*chunkPlan, error) {
	p := &chunkPlan{traceID: w.ids[refs[0].gid]}
	chunk := ptrace.NewTraces()
	var (
		curRS, curSS        int32 = -1, -1
		dstSpans            ptrace.SpanSlice
		dstRS               ptrace.ResourceSpans
		service             string
		svcSpans, svcErrors uint32
		svcHash             uint64
		first               = true
	)
	allHash := w.h.all()
	w.flist = w.flist[:0]
	clear(w.fields)
	// Chunks carry few distinct fields (telemetrygen: 14), so a linear scan of a small
	// slice beats hashing into a map; the map takes over for unusual chunks.
	addField := func(hash uint64, b uint32, start uint64) {
		k := fieldKey{hash: hash, bucket: b}
		i := -1
		if len(w.flist) <= linearFields {
			for j := range w.flist {
				if w.flist[j].k == k {
					i = j
					break
				}
			}
		} else {
			if len(w.fields) == 0 {
				for j, e := range w.flist {
					w.fields[e.k] = j
				}
			}
			if j, ok := w.fields[k]; ok {
				i = j
			}
		}
		if i < 0 {
			w.flist = append(w.flist, fieldEntry{k: k, first: start, last: start})
			if len(w.fields) > 0 {
				w.fields[k] = len(w.flist) - 1
			}
			return
		}
		f := &w.flist[i]
		f.first = min(f.first, start)
		f.last = max(f.last, start)
	}
	flushService := func() {
		if svcSpans > 0 {
			p.sum.addService(service, svcSpans, svcErrors)
		}
		svcSpans, svcErrors = 0, 0
	}
	rss := td.ResourceSpans()
	for _, r := range refs {
		if r.rs != curRS {
			flushService()
			rs := rss.At(int(r.rs))
			dstRS = chunk.ResourceSpans().AppendEmpty()
			rs.Resource().CopyTo(dstRS.Resource())
			dstRS.SetSchemaUrl(rs.SchemaUrl())
			service = serviceOf(rs.Resource())
			svcHash = w.h.service(service)
			w.resHash = s.attrHashes(w, w.resHash[:0], rs.Resource().Attributes())
			curRS, curSS = r.rs, -1
		}
		if r.ss != curSS {
			ss := rss.At(int(r.rs)).ScopeSpans().At(int(r.ss))
			dstSS := dstRS.ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(dstSS.Scope())
			dstSS.SetSchemaUrl(ss.SchemaUrl())
			dstSpans = dstSS.Spans()
			w.scopeHash = s.attrHashes(w, w.scopeHash[:0], ss.Scope().Attributes())
			curSS = r.ss
		}
		sp := rss.At(int(r.rs)).ScopeSpans().At(int(r.ss)).Spans().At(int(r.sp))
		sp.CopyTo(dstSpans.AppendEmpty())

		start, end := uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp())
		b := bucketOf(start)
		if first {
			p.sum.minStart, p.sum.maxEnd = start, end
			first = false
		} else {
			p.sum.minStart = min(p.sum.minStart, start)
			p.sum.maxEnd = max(p.sum.maxEnd, end)
		}
		p.sum.spans++
		svcSpans++
		if sp.Status().Code() == ptrace.StatusCodeError {
			p.sum.errors++
			svcErrors++
		}
		if sp.ParentSpanID().IsEmpty() {
			p.sum.offerRoot(start, sp.SpanID(), service, sp.Name())
		}
		p.sum.addBucket(b)

		addField(allHash, b, start)
		if service != "" {
			addField(svcHash, b, start)
			addField(w.h.operation(service, sp.Name()), b, start)
		}
		for _, h := range w.resHash {
			addField(h, b, start)
		}
		for _, h := range w.scopeHash {
			addField(h, b, start)
		}
		s.addAttrFields(w, sp.Attributes(), b, start, addField)
		evs := sp.Events()
		for i := 0; i < evs.Len(); i++ {
			s.addAttrFields(w, evs.At(i).Attributes(), b, start, addField)
		}
		links := sp.Links()
		for i := 0; i < links.Len(); i++ {
			s.addAttrFields(w, links.At(i).Attributes(), b, start, addField)
		}
	}
	flushService()

	var m ptrace.ProtoMarshaler
	raw, err := m.MarshalTraces(chunk)
	if err != nil {
		return nil, fmt.Errorf("encode chunk of trace %s: %w", hex.EncodeToString(p.traceID[:]), err)
	}
	hash := xxhash.Sum64(raw)
	value := make([]byte, 1, 1+len(raw)/3+64)
	value[0] = codecZstdProto
	p.value = s.enc.EncodeAll(raw, value)

	chunkBucket := bucketOf(p.sum.minStart)
	p.arena = make([]byte, 0, chunkKeyLen+summaryKeyLen+len(w.flist)*(indexKeyLen+8))
	p.arena = appendChunkKey(p.arena, chunkBucket, p.traceID, hash)
	p.chunkKey = p.arena[:chunkKeyLen:chunkKeyLen]
	p.arena = appendSummaryKey(p.arena, p.traceID)
	p.sumKey = p.arena[chunkKeyLen : chunkKeyLen+summaryKeyLen : chunkKeyLen+summaryKeyLen]
	p.index = make([][2][]byte, 0, len(w.flist))
	for _, f := range w.flist {
		off := len(p.arena)
		p.arena = appendIndexKey(p.arena, f.k.bucket, f.k.hash, f.first, p.traceID)
		p.arena = appendU64(p.arena, f.last)
		p.index = append(p.index, [2][]byte{
			p.arena[off : off+indexKeyLen : off+indexKeyLen],
			p.arena[off+indexKeyLen : off+indexKeyLen+8 : off+indexKeyLen+8],
		})
	}
	return p, nil
}

// attrHashes appends the index hashes of the indexable attributes of m.
func (s *Store) attrHashes(w *writeScratch, dst []uint64, m pcommon.Map) []uint64 {
	for k, v := range m.All() {
		if str, ok := indexableValue(v); ok {
			dst = append(dst, w.h.attribute(k, str))
		}
	}
	return dst
}

func (s *Store) addAttrFields(w *writeScratch, m pcommon.Map, b uint32, start uint64, add func(uint64, uint32, uint64)) {
	for k, v := range m.All() {
		if str, ok := indexableValue(v); ok {
			add(w.h.attribute(k, str), b, start)
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
	}
	str := v.AsString()
	return str, len(str) <= maxIndexedValue
}

// commitPlans writes the plans in as few transactions as fit, never splitting a plan.
func (s *Store) commitPlans(ctx context.Context, plans []*chunkPlan, catalog []catalogEntry, exp uint64) error {
	maxSize, maxCount := s.db.MaxBatchSize()*7/10, s.db.MaxBatchCount()*7/10
	var size, count int64
	start := 0
	for i, p := range plans {
		ps, pc := p.estimate()
		if i > start && (size+ps > maxSize || count+pc > maxCount) {
			if err := s.commitGroup(ctx, plans[start:i], catalog, exp); err != nil {
				return err
			}
			catalog = nil
			start, size, count = i, 0, 0
		}
		size += ps
		count += pc
	}
	return s.commitGroup(ctx, plans[start:], catalog, exp)
}

// commitGroup commits plans in one transaction, retrying lost optimistic races, and
// halving the group when Badger finds it too big after all.
func (s *Store) commitGroup(ctx context.Context, plans []*chunkPlan, catalog []catalogEntry, exp uint64) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write traces: %w", err)
		}
		err := s.db.Update(func(txn *badger.Txn) error { return s.applyGroup(txn, plans, catalog, exp) })
		switch {
		case err == nil:
			s.commits.Add(1)
			return nil
		case errors.Is(err, badger.ErrConflict) && attempt < maxConflictRetries:
			s.conflicts.Add(1)
			continue
		case errors.Is(err, badger.ErrTxnTooBig) && len(plans) > 1:
			half := len(plans) / 2
			if err := s.commitGroup(ctx, plans[:half], catalog, exp); err != nil {
				return err
			}
			return s.commitGroup(ctx, plans[half:], nil, exp)
		default:
			return fmt.Errorf("commit %d trace chunks: %w", len(plans), err)
		}
	}
}

func (s *Store) applyGroup(txn *badger.Txn, plans []*chunkPlan, catalog []catalogEntry, exp uint64) error {
	var stored summary
	for _, p := range plans {
		p.dup = false
		_, err := txn.Get(p.chunkKey)
		if err == nil {
			// Identical chunk already stored with its summary and index: a retry.
			p.dup = true
			continue
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("read chunk of trace %s: %w", hex.EncodeToString(p.traceID[:]), err)
		}
		stored.reset()
		item, err := txn.Get(p.sumKey)
		switch {
		case err == nil:
			if err := item.Value(stored.decode); err != nil {
				return fmt.Errorf("read summary of trace %s: %w", hex.EncodeToString(p.traceID[:]), err)
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("read summary of trace %s: %w", hex.EncodeToString(p.traceID[:]), err)
		}
		stored.merge(&p.sum)
		sumValue := stored.appendTo(make([]byte, 0, 64+16*len(stored.services)+4*len(stored.buckets)))
		if err := txn.SetEntry(&badger.Entry{Key: p.sumKey, Value: sumValue, ExpiresAt: exp}); err != nil {
			return err
		}
		if err := txn.SetEntry(&badger.Entry{Key: p.chunkKey, Value: p.value, ExpiresAt: exp}); err != nil {
			return err
		}
		entries := make([]badger.Entry, len(p.index))
		for i, kv := range p.index {
			entries[i] = badger.Entry{Key: kv[0], Value: kv[1], ExpiresAt: exp}
			if err := txn.SetEntry(&entries[i]); err != nil {
				return err
			}
		}
	}
	for _, c := range catalog {
		if err := txn.SetEntry(&badger.Entry{Key: c.key, ExpiresAt: exp}); err != nil {
			return err
		}
	}
	return nil
}
