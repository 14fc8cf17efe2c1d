package badgerstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/otlpwire"
	"github.com/spoortrace/spoor/storage"
)

// GetTrace returns every stored span of the trace, each once.
func (s *Store) GetTrace(ctx context.Context, traceID pcommon.TraceID) (ptrace.Traces, error) {
	txn, st := s.begin()
	defer txn.Discard()
	var sum summary
	ok, err := s.traceSummary(txn, st, traceID, &sum, math.MaxUint64)
	if err != nil {
		return ptrace.Traces{}, err
	}
	if !ok {
		return ptrace.Traces{}, storage.ErrTraceNotFound
	}
	td, found, err := s.readTrace(ctx, txn, traceID, &sum)
	if err != nil {
		return ptrace.Traces{}, err
	}
	if !found {
		return ptrace.Traces{}, storage.ErrTraceNotFound
	}
	return td, nil
}

// readTrace collects the trace's spans from the blocks its summary lists. A block a
// search has decoded is read from the cache; of any other only the chunk holding the
// trace is decompressed, and only the trace's own spans are cut out of its protobuf
// (filterTrace) and unmarshaled. A lone
// GetTrace does not fill the cache: random lookups would only churn it.
func (s *Store) readTrace(ctx context.Context, txn *badger.Txn, traceID pcommon.TraceID, sum *summary) (ptrace.Traces, bool, error) {
	td := ptrace.NewTraces()
	var parts []tracePart
	scratch := rawPool.Get().(*[]byte)
	defer rawPool.Put(scratch)
	for _, ref := range sum.blocks {
		if err := ctx.Err(); err != nil {
			return td, false, fmt.Errorf("read trace %s: %w", hex.EncodeToString(traceID[:]), err)
		}
		if blk := s.cache.get(ref); blk != nil {
			if refs := blk.traces[traceID]; len(refs) > 0 {
				parts = append(parts, tracePart{blk: blk, refs: refs})
			}
			continue
		}
		var key [blockKeyLen]byte
		item, err := txn.Get(appendBlockKey(key[:0], prefixBlock, ref))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue // dropped by retention before its summary fragment expired
		}
		if err != nil {
			return td, false, fmt.Errorf("read block %x: %w", key, err)
		}
		var raw []byte
		if err := item.Value(func(v []byte) error {
			var err error
			raw, err = s.decompressChunkOf(v, traceID, (*scratch)[:0])
			return err
		}); err != nil {
			return td, false, fmt.Errorf("read block %x: %w", key, err)
		}
		*scratch = raw
		part, err := traceOfBlock(raw, traceID)
		if err != nil {
			return td, false, fmt.Errorf("read trace %s from block %d/%x: %w", hex.EncodeToString(traceID[:]), ref.bucket, ref.hash, err)
		}
		part.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	if len(parts) > 0 {
		copyTrace(parts).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	dedupeSpans(td)
	return td, td.SpanCount() > 0, nil
}

// rawPool holds buffers for decompressed blocks that are read, not kept.
var rawPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

// decompressChunkOf decompresses, of a stored block value, the chunk that holds the
// spans of trace id, appending to dst.
func (s *Store) decompressChunkOf(v []byte, id pcommon.TraceID, dst []byte) ([]byte, error) {
	var fa [32][]byte
	frames, err := blockFrames(v, fa[:0])
	if err != nil {
		return nil, err
	}
	return s.decompressFrame(frames[otlpwire.ChunkOf(id, len(frames))], dst)
}

// traceOfBlock unmarshals only the spans of traceID from a decompressed block.
func traceOfBlock(raw []byte, traceID pcommon.TraceID) (ptrace.Traces, error) {
	// A fresh buffer for what is unmarshaled: raw may be a pooled one, reused at once.
	only, _, err := otlpwire.FilterTrace(nil, raw, traceID)
	if err != nil {
		return ptrace.Traces{}, err
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(only)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("decode spans of the trace: %w", err)
	}
	return td, nil
}

// tracePart is the spans of one trace in one decoded block.
type tracePart struct {
	blk  *decodedBlock
	refs []spanRef
}

// traceParts appends the trace's spans in each block its summary lists, read in txn (the
// summary's snapshot). A block that expired before its summary is skipped. fill says
// whether blocks decoded here enter the cache.
func (s *Store) traceParts(ctx context.Context, txn *badger.Txn, traceID pcommon.TraceID, sum *summary, dst []tracePart, fill bool) ([]tracePart, error) {
	for _, ref := range sum.blocks {
		if err := ctx.Err(); err != nil {
			return dst, fmt.Errorf("read trace %s: %w", hex.EncodeToString(traceID[:]), err)
		}
		blk, err := s.block(txn, ref, fill)
		if err != nil {
			return dst, fmt.Errorf("read trace %s: %w", hex.EncodeToString(traceID[:]), err)
		}
		if blk == nil {
			continue
		}
		if refs := blk.traces[traceID]; len(refs) > 0 {
			dst = append(dst, tracePart{blk: blk, refs: refs})
		}
	}
	return dst, nil
}

// block returns the decoded block, from the cache or from txn; nil when it is not stored.
func (s *Store) block(txn *badger.Txn, ref blockRef, fill bool) (*decodedBlock, error) {
	if blk := s.cache.get(ref); blk != nil {
		return blk, nil
	}
	var key [blockKeyLen]byte
	var blk *decodedBlock
	found, err := s.readValue(txn, appendBlockKey(key[:0], prefixBlock, ref), func(v []byte) error {
		var err error
		blk, err = s.decodeBlock(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read block %x: %w", key, err)
	}
	if !found {
		return nil, nil
	}
	if fill {
		s.cache.put(ref, blk)
	}
	return blk, nil
}

func (s *Store) decodeBlock(v []byte) (*decodedBlock, error) {
	var fa [32][]byte
	frames, err := blockFrames(v, fa[:0])
	if err != nil {
		return nil, err
	}
	// A fresh buffer: the decoded traces may alias it. The chunks back to back are one
	// TracesData (a protobuf merge appends their resource_spans).
	var raw []byte
	for _, f := range frames {
		if raw, err = s.decompressFrame(f, raw); err != nil {
			return nil, err
		}
	}
	var u ptrace.ProtoUnmarshaler
	td, err := u.UnmarshalTraces(raw)
	if err != nil {
		return nil, fmt.Errorf("decode block: %w", err)
	}
	return newDecodedBlock(td, len(raw)), nil
}

// copyTrace copies the parts' spans, with their resources and scopes, into a new
// ptrace.Traces the caller owns, and drops duplicate spans.
func copyTrace(parts []tracePart) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, p := range parts {
		appendSpans(td, p.blk.td, p.refs)
	}
	dedupeSpans(td)
	return td
}

type spanIdentity struct {
	spanID, parentID pcommon.SpanID
	kind             ptrace.SpanKind
	start, end       pcommon.Timestamp
	service          string
}

// dedupeSpans drops spans equal to an earlier one (FORMAT.md: same span ID, parent,
// kind, service, start and end), then scopes and resources left empty.
func dedupeSpans(td ptrace.Traces) {
	seen := make(map[spanIdentity]struct{})
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		service := serviceOf(rs.Resource())
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
				k := spanIdentity{spanID: sp.SpanID(), parentID: sp.ParentSpanID(), kind: sp.Kind(),
					start: sp.StartTimestamp(), end: sp.EndTimestamp(), service: service}
				if _, dup := seen[k]; dup {
					return true
				}
				seen[k] = struct{}{}
				return false
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
}

// GetServices returns the cataloged services, sorted; never nil.
func (s *Store) GetServices(_ context.Context) ([]string, error) {
	now := time.Now().Unix()
	s.catalogMu.RLock()
	out := make([]string, 0, len(s.services))
	for name, exp := range s.services {
		if exp == 0 || exp > now {
			out = append(out, name)
		}
	}
	s.catalogMu.RUnlock()
	slices.Sort(out)
	return out, nil
}

var kindNames = [...]string{
	ptrace.SpanKindUnspecified: "unspecified",
	ptrace.SpanKindInternal:    "internal",
	ptrace.SpanKindServer:      "server",
	ptrace.SpanKindClient:      "client",
	ptrace.SpanKindProducer:    "producer",
	ptrace.SpanKindConsumer:    "consumer",
}

func kindName(k byte) string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unspecified"
}

// GetOperations returns the cataloged operations of q.ServiceName, sorted by name then
// kind; never nil.
func (s *Store) GetOperations(_ context.Context, q storage.OperationQuery) ([]storage.Operation, error) {
	want := -1
	if q.SpanKind != "" {
		for i, n := range kindNames {
			if n == q.SpanKind {
				want = i
			}
		}
		if want < 0 {
			return nil, &storage.InvalidInputError{Reason: fmt.Sprintf("unknown span kind %q", q.SpanKind)}
		}
	}
	now := time.Now().Unix()
	out := []storage.Operation{}
	s.catalogMu.RLock()
	for op, exp := range s.operations {
		if op.service != q.ServiceName || (want >= 0 && int(op.kind) != want) || (exp != 0 && exp <= now) {
			continue
		}
		out = append(out, storage.Operation{Name: op.name, SpanKind: kindName(op.kind)})
	}
	s.catalogMu.RUnlock()
	slices.SortFunc(out, func(a, b storage.Operation) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.SpanKind, b.SpanKind)
	})
	return out, nil
}

// appendSpans copies the spans refs points at in src, with their resources and scopes,
// to dst. Runs of refs in the same resource and scope share one copy of them.
func appendSpans(dst, src ptrace.Traces, refs []spanRef) {
	rss := src.ResourceSpans()
	var (
		curRS, curSS int32 = -1, -1
		dstRS        ptrace.ResourceSpans
		dstSpans     ptrace.SpanSlice
	)
	for _, r := range refs {
		if r.rs != curRS {
			rs := rss.At(int(r.rs))
			dstRS = dst.ResourceSpans().AppendEmpty()
			rs.Resource().CopyTo(dstRS.Resource())
			dstRS.SetSchemaUrl(rs.SchemaUrl())
			curRS, curSS = r.rs, -1
		}
		if r.ss != curSS {
			ss := rss.At(int(r.rs)).ScopeSpans().At(int(r.ss))
			dstSS := dstRS.ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(dstSS.Scope())
			dstSS.SetSchemaUrl(ss.SchemaUrl())
			dstSpans = dstSS.Spans()
			curSS = r.ss
		}
		rss.At(int(r.rs)).ScopeSpans().At(int(r.ss)).Spans().At(int(r.sp)).CopyTo(dstSpans.AppendEmpty())
	}
}

// readPage sets the spans of every match of a search page, reading each block once:
// a page's traces often share blocks. Blocks a search decoded are read from the cache;
// of the others only the chunks holding the page's traces are decompressed (each once),
// and cut for all of them in one walk (filterTraces). Decompressing and
// cutting — most of a page's cost when its traces lie in different blocks, as a flow's
// do — runs on up to readWorkers goroutines; the transaction is used by this one only.
func (s *Store) readPage(ctx context.Context, txn *badger.Txn, matches []match, sums []summary, found []bool) error {
	type blockUse struct {
		ref     blockRef
		matches []int
		blk     *decodedBlock   // from the cache
		frames  [][]byte        // else the frames of the chunks it needs, copied (others nil)
		parts   []ptrace.Traces // then per matches[i], the trace's spans (zero when none)
		failed  error
	}
	var order []*blockUse
	uses := map[blockRef]*blockUse{}
	for i := range matches {
		matches[i].td = ptrace.NewTraces()
		if !found[i] {
			continue
		}
		for _, ref := range sums[i].blocks {
			u := uses[ref]
			if u == nil {
				u = &blockUse{ref: ref}
				uses[ref] = u
				order = append(order, u)
			}
			u.matches = append(u.matches, i)
		}
	}
	var cut []*blockUse
	for _, use := range order {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read search results: %w", err)
		}
		if use.blk = s.cache.get(use.ref); use.blk != nil {
			continue
		}
		var key [blockKeyLen]byte
		item, err := txn.Get(appendBlockKey(key[:0], prefixBlock, use.ref))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue // dropped by retention before its summary fragments expired
		}
		if err != nil {
			return fmt.Errorf("read block %x: %w", key, err)
		}
		// Only the frames of the chunks it needs are copied out of the value: copying
		// whole values was 5% of a flow's CPU.
		if err := item.Value(func(v []byte) error {
			var fa [32][]byte
			frames, err := blockFrames(v, fa[:0])
			if err != nil {
				use.failed = err // read again below, as a copy that does not decode is
				return nil
			}
			use.frames = make([][]byte, len(frames))
			for _, i := range use.matches {
				if c := otlpwire.ChunkOf(matches[i].id, len(frames)); use.frames[c] == nil {
					use.frames[c] = append(make([]byte, 0, len(frames[c])), frames[c]...)
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("read block %x: %w", key, err)
		}
		cut = append(cut, use)
	}
	// cutFrames decompresses only the chunks that hold the use's traces, each once:
	// frames holds at least those.
	cutFrames := func(use *blockUse, frames [][]byte, scratch *[]byte) error {
		chunkOf := make([]int, len(use.matches))
		for j, i := range use.matches {
			chunkOf[j] = otlpwire.ChunkOf(matches[i].id, len(frames))
		}
		use.parts = make([]ptrace.Traces, len(use.matches))
		var u ptrace.ProtoUnmarshaler
		var ids []pcommon.TraceID
		for j0, c := range chunkOf {
			if c < 0 {
				continue // its chunk was cut already
			}
			raw, err := s.decompressFrame(frames[c], (*scratch)[:0])
			if err != nil {
				return err
			}
			*scratch = raw
			ids = ids[:0]
			for j := j0; j < len(chunkOf); j++ {
				if chunkOf[j] == c {
					ids = append(ids, matches[use.matches[j]].id)
				}
			}
			pieces, err := otlpwire.FilterTraces(raw, ids)
			if err != nil {
				return err
			}
			for j := j0; j < len(chunkOf); j++ {
				if chunkOf[j] != c {
					continue
				}
				chunkOf[j] = -1
				id := matches[use.matches[j]].id
				b, ok := pieces[id]
				if !ok {
					continue
				}
				if use.parts[j], err = u.UnmarshalTraces(b); err != nil {
					return fmt.Errorf("decode spans of trace %s: %w", hex.EncodeToString(id[:]), err)
				}
			}
		}
		return nil
	}
	cutBlock := func(use *blockUse, v []byte, scratch *[]byte) error {
		var fa [32][]byte
		frames, err := blockFrames(v, fa[:0])
		if err != nil {
			return err
		}
		return cutFrames(use, frames, scratch)
	}
	var next atomic.Int64
	work := func() {
		scratch := rawPool.Get().(*[]byte)
		defer rawPool.Put(scratch)
		for k := int(next.Add(1) - 1); k < len(cut) && ctx.Err() == nil; k = int(next.Add(1) - 1) {
			if cut[k].failed == nil {
				cut[k].failed = cutFrames(cut[k], cut[k].frames, scratch)
			}
			cut[k].frames = nil
		}
	}
	var wg sync.WaitGroup
	for range min(readWorkers, len(cut)) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("read search results: %w", err)
	}
	for _, use := range cut {
		if use.failed == nil {
			continue
		}
		// Read again through readValue, which rereads a value that does not decode
		// once (value-log GC may have moved it while it was copied).
		scratch := rawPool.Get().(*[]byte)
		var key [blockKeyLen]byte
		ok, err := s.readValue(txn, appendBlockKey(key[:0], prefixBlock, use.ref), func(v []byte) error { return cutBlock(use, v, scratch) })
		rawPool.Put(scratch)
		if err != nil {
			return fmt.Errorf("read block %x: %w", key, err)
		}
		if !ok {
			use.parts = nil // dropped by retention meanwhile
		}
	}
	for _, use := range order {
		for j, i := range use.matches {
			if use.blk != nil {
				if refs := use.blk.traces[matches[i].id]; len(refs) > 0 {
					appendSpans(matches[i].td, use.blk.td, refs)
				}
			} else if j < len(use.parts) && use.parts[j] != (ptrace.Traces{}) {
				use.parts[j].ResourceSpans().MoveAndAppendTo(matches[i].td.ResourceSpans())
			}
		}
	}
	for i := range matches {
		dedupeSpans(matches[i].td)
	}
	return nil
}

// readWorkers bounds the goroutines of one readPage: the machine's cores, at most 4, so
// that one search cannot take every core from ingest.
var readWorkers = min(runtime.GOMAXPROCS(0), 4)
