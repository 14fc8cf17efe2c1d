package badgerstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/s2"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// indexState is what one search reads: the heads and the segment lists of its buckets
// as they were when its Badger transaction started (taken under index.mu, which an
// install holds exclusively around committing segment directories, so the pages of
// every segment in the state are in the transaction's snapshot).
type indexState struct {
	heads []*headIndex
	segs  map[uint32][]*segment
	seq   uint64 // the index watermark: every block at or below it is published
}

// begin starts a read transaction together with the index state it may read: every
// bucket's segments, since a trace's summary fragments may lie in any bucket.
func (s *Store) begin() (*badger.Txn, *indexState) {
	x := &s.idx
	x.mu.RLock()
	defer x.mu.RUnlock()
	txn := s.db.NewTransaction(false)
	st := &indexState{heads: append([]*headIndex{x.head}, x.flushing...), segs: make(map[uint32][]*segment, len(x.segs))}
	for b, list := range x.segs {
		st.segs[b] = list // never modified in place: install replaces the slice
	}
	// Every block at or below the watermark is published (FORMAT.md, cursors).
	st.seq = x.watermark()
	return txn, st
}

func (x *index) statePostings(st *indexState, b uint32, fields []uint64, dst []posting) []posting {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, f := range fields {
		for _, h := range st.heads {
			dst = h.collect(b, f, dst)
		}
	}
	return dst
}

// nextSegID returns a segment ID never used before, also across restarts.
func (x *index) nextSegID() uint64 {
	x.seqMu.Lock()
	defer x.seqMu.Unlock()
	id := max(uint64(time.Now().UnixNano()), x.lastSegID+1)
	x.lastSegID = id
	return id
}

// flushHead writes the head (and any head whose earlier flush failed) as segments,
// then merges full tiers. Searches read a head until its segments are installed.
func (s *Store) flushHead() error {
	x := &s.idx
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	x.mu.Lock()
	if len(x.head.blocks) > 0 {
		x.flushing = append(x.flushing, x.head)
		x.head = newHeadLike(x.head)
	}
	pending := slices.Clone(x.flushing)
	x.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	// Every block at or below the watermark is in a pending head or an earlier segment.
	wm := x.watermark()
	for i, h := range pending {
		segs, err := s.writeSegments(h)
		if err != nil {
			return err
		}
		var meta []byte
		if i == len(pending)-1 {
			meta = binary.BigEndian.AppendUint64(nil, wm)
		}
		if err := s.install(segs, nil, h, meta); err != nil {
			return err
		}
		s.indexFlushes.Add(1)
	}
	return s.mergeTiers()
}

// fieldSortKey is a head field in writeSegments' order: by bucket, then field hash.
type fieldSortKey struct {
	hash   uint64
	bucket uint32
	fid    int32
}

// sortFieldKeys sorts keys by (bucket, hash) and returns them sorted, in keys or tmp
// (of the same length): a radix sort, four passes of 16 bits over the hashes, after
// which a stable pass by bucket runs when the head holds more than one (a late span's
// bucket). A comparison sort of a flush's ~100,000 fields took 0.25 s of write CPU
// per million storebench spans.
func sortFieldKeys(keys, tmp []fieldSortKey) []fieldSortKey {
	if len(keys) < 2048 {
		// A small head (an age-based flush of a quiet store): not worth the passes
		// over 2^16 counters.
		slices.SortFunc(keys, func(a, b fieldSortKey) int {
			if c := cmp.Compare(a.bucket, b.bucket); c != 0 {
				return c
			}
			return cmp.Compare(a.hash, b.hash)
		})
		return keys
	}
	var count [1 << 16]int32
	src, dst := keys, tmp
	for shift := uint(0); shift < 64; shift += 16 {
		clear(count[:])
		for i := range src {
			count[uint16(src[i].hash>>shift)]++
		}
		var sum int32
		for d := range count {
			c := count[d]
			count[d] = sum
			sum += c
		}
		for i := range src {
			d := uint16(src[i].hash >> shift)
			dst[count[d]] = src[i]
			count[d]++
		}
		src, dst = dst, src
	}
	// The buckets: a handful (the current hour, and late spans').
	var buckets []uint32
	for i := range src {
		if b := src[i].bucket; !slices.Contains(buckets, b) {
			buckets = append(buckets, b)
		}
	}
	if len(buckets) < 2 {
		return src
	}
	slices.Sort(buckets)
	starts := make([]int, len(buckets))
	for i := range src {
		j, _ := slices.BinarySearch(buckets, src[i].bucket)
		starts[j]++
	}
	sum := 0
	for j, c := range starts {
		starts[j] = sum
		sum += c
	}
	for i := range src {
		j, _ := slices.BinarySearch(buckets, src[i].bucket)
		dst[starts[j]] = src[i]
		starts[j]++
	}
	return dst
}

// writeSegments writes h's postings as one segment per bucket (pages only: a segment
// is invisible until install commits its directory). Only the distinct fields are
// sorted, and a field's records when a late block put them out of order.
func (s *Store) writeSegments(h *headIndex) ([]*segment, error) {
	// The fields in (bucket, hash) order; then each field's place in the postings or
	// the fragments, and one pass over the records in the order they were added puts
	// each in its place, filling each field's from its end: newest first, as its chain
	// runs. Walking the chains instead cost a cache miss per record.
	keys := make([]fieldSortKey, len(h.fields))
	for i, f := range h.fields {
		keys[i] = fieldSortKey{hash: f.key.hash, bucket: f.key.bucket, fid: int32(i)}
	}
	keys = sortFieldKeys(keys, make([]fieldSortKey, len(keys)))
	fidOf := make([]int32, len(keys))
	for i, k := range keys {
		fidOf[i] = k.fid
	}
	nTrace := 0
	for _, f := range h.fields {
		if f.trace {
			nTrace += int(f.count)
		}
	}
	posts, traces := make([]segEntry, len(h.recs)-nTrace), make([]segEntry, nTrace)
	// end[fid] is one past the field's last place; pEnd/tEnd run through both.
	end := make([]int32, len(h.fields))
	var pEnd, tEnd int32
	type bucketRange struct {
		bucket                     uint32
		p0, p1, t0, t1, fid0, fid1 int
	}
	var ranges []bucketRange
	for i, fid := range fidOf {
		f := &h.fields[fid]
		if len(ranges) == 0 || ranges[len(ranges)-1].bucket != f.key.bucket {
			ranges = append(ranges, bucketRange{bucket: f.key.bucket, p0: int(pEnd), t0: int(tEnd), fid0: i})
		}
		if f.trace {
			tEnd += f.count
			end[fid] = tEnd
		} else {
			pEnd += f.count
			end[fid] = pEnd
		}
		r := &ranges[len(ranges)-1]
		r.p1, r.t1, r.fid1 = int(pEnd), int(tEnd), i+1
	}
	for i := range h.recs {
		r := &h.recs[i]
		f := &h.fields[r.fid]
		end[r.fid]--
		e := segEntry{field: f.key.hash, maxStart: r.maxStart, hash: h.blocks[r.block].ref.hash, block: uint32(r.block)}
		e.setVal(h.arena, r.off, r.n)
		if f.trace {
			traces[end[r.fid]] = e
		} else {
			posts[end[r.fid]] = e
		}
	}
	var out []*segment
	blockIdx := make([]int32, len(h.blocks))
	for _, br := range ranges {
		for i := range blockIdx {
			blockIdx[i] = -1
		}
		sg := &segment{bucket: br.bucket, id: s.idx.nextSegID()}
		// Blocks renumbered into the segment's table, in order of first use.
		for _, ents := range [][]segEntry{posts[br.p0:br.p1], traces[br.t0:br.t1]} {
			for k := range ents {
				e := &ents[k]
				if blockIdx[e.block] < 0 {
					blockIdx[e.block] = int32(len(sg.blocks))
					sg.blocks = append(sg.blocks, h.blocks[e.block])
				}
				sg.maxStart = max(sg.maxStart, e.maxStart)
				e.block = uint32(blockIdx[e.block])
			}
		}
		// A field's records are newest first; their maxStarts usually descend too, but
		// a late block can hold older spans.
		for _, fid := range fidOf[br.fid0:br.fid1] {
			f := &h.fields[fid]
			ents := posts
			if f.trace {
				ents = traces
			}
			if chain := ents[end[fid] : end[fid]+f.count]; !slices.IsSortedFunc(chain, compareSegEntry) {
				slices.SortFunc(chain, compareSegEntry)
			}
		}
		if err := s.writeSegment(sg, posts[br.p0:br.p1], traces[br.t0:br.t1], h.arena); err != nil {
			return nil, err
		}
		out = append(out, sg)
	}
	return out, nil
}

// writeSegment writes the postings and the trace fragments, each sorted by
// compareSegEntry and made with arena, as sg's pages: posting pages, then trace pages,
// each handed to the page sink as it is cut (as a merge's are), so that a flush holds
// no more than a transaction's worth of them.
func (s *Store) writeSegment(sg *segment, posts, traces []segEntry, arena []byte) error {
	sink := s.newPageSink(sg)
	// Postings in pages of segPageTarget, then the trace fields' summary fragments in
	// small pages of their own, with a Bloom filter of the trace fields.
	var err error
	if sg.first, err = writePages(sink, posts, arena, sg.maxStart, segPageTarget); err != nil {
		return err
	}
	if sg.tfirst, err = writePages(sink, traces, arena, sg.maxStart, tracePageTarget); err != nil {
		return err
	}
	distinct := 0
	for i := range traces {
		if i == 0 || traces[i].field != traces[i-1].field {
			distinct++
		}
	}
	sg.bloom = newBloom(distinct)
	for i := range traces {
		if i == 0 || traces[i].field != traces[i-1].field {
			sg.bloom.add(traces[i].field)
		}
	}
	return sink.finish()
}

// writePages cuts ents into pages of target for sink and returns each page's first
// field.
func writePages(sink *pageSink, ents []segEntry, arena []byte, segMax uint64, target int) ([]uint64, error) {
	w := newPageWriter(segMax, target)
	w.emit = sink.add
	writeEntries(w, ents, arena)
	_, first := w.finish()
	return first, w.err
}

// pageSink compresses a segment's pages, numbering them in the order they come, and
// writes them in transactions of up to half Badger's batch limit.
type pageSink struct {
	s     *Store
	sg    *segment
	exp   uint64
	n     uint32 // pages added
	batch []*badger.Entry
	size  int64
	limit int64
}

func (s *Store) newPageSink(sg *segment) *pageSink {
	return &pageSink{s: s, sg: sg, exp: s.expiresAt(time.Now()), limit: s.db.MaxBatchSize() / 2}
}

// add compresses pg (which it does not keep) as the segment's next page.
func (w *pageSink) add(pg []byte) error {
	// Every page is S2-compressed (FORMAT.md: why not zstd). Trace pages, read one per
	// trace lookup, were first: decoding a 4 KiB zstd page cost a search several times
	// what reading its summaries used to. Posting pages followed: zstd on them was
	// about a tenth of the store's write CPU. A flush's pages, which a merge soon
	// rewrites, take S2's fast mode; a merge's, which stay, its better one.
	val := make([]byte, 1, 1+s2.MaxEncodedLen(len(pg)))
	val[0] = codecS2Page
	if w.sg.level == 0 {
		val = val[:1+len(s2.Encode(val[1:cap(val)], pg))]
	} else {
		val = val[:1+len(s2.EncodeBetter(val[1:cap(val)], pg))]
	}
	w.sg.bytes += len(val)
	w.batch = append(w.batch, &badger.Entry{Key: appendSegPageKey(nil, w.sg.bucket, w.sg.id, w.n), Value: val, ExpiresAt: w.exp})
	w.n++
	w.size += int64(len(val)) + 64
	if w.size >= w.limit || len(w.batch) >= 1000 {
		return w.commit()
	}
	return nil
}

// finish writes the pages not written yet.
func (w *pageSink) finish() error { return w.commit() }

func (w *pageSink) commit() error {
	if len(w.batch) == 0 {
		return nil
	}
	w.s.retention.dropMu.RLock()
	err := w.s.db.Update(func(txn *badger.Txn) error {
		for _, e := range w.batch {
			if err := txn.SetEntry(e); err != nil {
				return err
			}
		}
		return nil
	})
	w.s.retention.dropMu.RUnlock()
	clear(w.batch)
	w.batch, w.size = w.batch[:0], 0
	if err != nil {
		return fmt.Errorf("write segment pages of bucket %d: %w", w.sg.bucket, err)
	}
	return nil
}

// install commits the directories of add (and deletes those of remove, and sets the
// index watermark when meta is set) and swaps them into the index with flushed, in one
// critical section: a search's transaction and its index state always agree.
//
// Segments of buckets retention has begun dropping (index.floor) are not installed:
// their pages, written after the drop deleted the bucket's keys, are deleted instead,
// or a merge racing the drop would bring back a directory, and pages, of a bucket
// that is gone.
func (s *Store) install(add, remove []*segment, flushed *headIndex, meta []byte) error {
	dropped, err := s.installLive(add, remove, flushed, meta)
	if err == nil && len(dropped) > 0 {
		s.indexDiscarded.Add(int64(len(dropped)))
		err = s.deletePages(dropped)
	}
	return err
}

func (s *Store) installLive(add, remove []*segment, flushed *headIndex, meta []byte) (dropped []*segment, err error) {
	x := &s.idx
	exp := s.expiresAt(time.Now())
	x.mu.Lock()
	defer x.mu.Unlock()
	if slices.ContainsFunc(add, func(sg *segment) bool { return sg.bucket < x.floor }) {
		live := make([]*segment, 0, len(add))
		for _, sg := range add {
			if sg.bucket < x.floor {
				dropped = append(dropped, sg)
			} else {
				live = append(live, sg)
			}
		}
		add = live
		remove = slices.DeleteFunc(slices.Clone(remove), func(sg *segment) bool { return sg.bucket < x.floor })
	}
	s.retention.dropMu.RLock()
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, sg := range add {
			e := &badger.Entry{Key: appendSegDirKey(nil, sg.bucket, sg.id), Value: sg.appendDir(nil), ExpiresAt: exp}
			if err := txn.SetEntry(e); err != nil {
				return err
			}
		}
		for _, sg := range remove {
			if err := txn.Delete(appendSegDirKey(nil, sg.bucket, sg.id)); err != nil {
				return err
			}
		}
		if meta != nil {
			return txn.Set([]byte{prefixMeta, metaIndexedSeq}, meta)
		}
		return nil
	})
	s.retention.dropMu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("install %d index segments: %w", len(add), err)
	}
	for _, sg := range remove {
		x.segs[sg.bucket] = slices.DeleteFunc(slices.Clone(x.segs[sg.bucket]), func(o *segment) bool { return o == sg })
	}
	for _, sg := range add {
		list := append(slices.Clone(x.segs[sg.bucket]), sg)
		slices.SortFunc(list, func(a, b *segment) int {
			if a.maxStart != b.maxStart {
				if a.maxStart > b.maxStart {
					return -1
				}
				return 1
			}
			if a.id > b.id {
				return -1
			}
			return 1
		})
		x.segs[sg.bucket] = list
	}
	if flushed != nil {
		x.flushing = slices.DeleteFunc(x.flushing, func(h *headIndex) bool { return h == flushed })
	}
	return dropped, nil
}

// mergeTiers merges, in every bucket, segMergeFanIn or more segments of one level
// (segMergeFanInL0 of level 0) into one segment of the next level, so that a bucket
// holds a few segments per level.
func (s *Store) mergeTiers() error {
	for {
		x := &s.idx
		x.mu.RLock()
		var group []*segment
		for _, list := range x.segs {
			byLevel := map[uint8][]*segment{}
			for _, sg := range list {
				byLevel[sg.level] = append(byLevel[sg.level], sg)
			}
			for _, l := range byLevel {
				if len(l) >= segMergeFanIn || l[0].level == 0 && len(l) >= segMergeFanInL0 {
					group = l
					break
				}
			}
			if group != nil {
				break
			}
		}
		x.mu.RUnlock()
		if group == nil {
			return nil
		}
		if err := s.mergeSegments(group); err != nil {
			return err
		}
	}
}

func (s *Store) mergeSegments(group []*segment) error {
	merged := &segment{bucket: group[0].bucket, id: s.idx.nextSegID(), level: group[0].level + 1}
	// The block tables one after another: a segment's block i is the merged one's
	// base + i. (A block is in one segment of a bucket: its head's.)
	for _, sg := range group {
		merged.maxStart = max(merged.maxStart, sg.maxStart)
		merged.blocks = append(merged.blocks, sg.blocks...)
	}
	// One read transaction for the pages of the whole group (a merge streams them, so
	// it runs while the merged pages are written); the pages stay until the merged
	// segment is installed.
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	var key [17]byte
	src := func(gi, p int, dst []byte) ([]byte, bool, error) {
		sg := group[gi]
		return s.readSegPageInto(txn, appendSegPageKey(key[:0], sg.bucket, sg.id, uint32(p)), dst)
	}
	sink := s.newPageSink(merged)
	err := mergePages(group, src, merged, sink.add)
	if err == nil {
		err = sink.finish()
	}
	if err != nil {
		return fmt.Errorf("merge %d segments of bucket %d: %w", len(group), merged.bucket, err)
	}
	if err := s.install([]*segment{merged}, group, nil, nil); err != nil {
		return err
	}
	s.indexMerges.Add(1)
	// Searches that started before the install still read the old pages from their
	// snapshot (Badger keeps versions that a running transaction can see).
	return s.deletePages(group)
}

func (s *Store) deletePages(group []*segment) error {
	var keys [][]byte
	for _, sg := range group {
		for p := range sg.pages() {
			keys = append(keys, appendSegPageKey(nil, sg.bucket, sg.id, uint32(p)))
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		s.retention.dropMu.RLock()
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, k := range keys[:n] {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		s.retention.dropMu.RUnlock()
		if err != nil {
			return fmt.Errorf("delete merged segment pages: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}

// startIndexFlusher flushes the head when it is full (signalled by writers) or old.
func (s *Store) startIndexFlusher() {
	ctx, cancel := context.WithCancel(context.Background())
	s.flusherStop = cancel
	s.flusherDone = make(chan struct{})
	s.flushSignal = make(chan struct{}, 1)
	go func() {
		defer close(s.flusherDone)
		tick := time.NewTicker(min(s.opts.HeadMaxAge/4, 15*time.Second))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.flushSignal:
				// WaitIndex may have flushed the full head since the signal.
				s.idx.mu.RLock()
				full := s.idx.head.spans >= s.opts.HeadMaxSpans
				s.idx.mu.RUnlock()
				if !full {
					continue
				}
			case <-tick.C:
				s.idx.mu.RLock()
				old := len(s.idx.head.blocks) > 0 && time.Since(s.idx.head.created) >= s.opts.HeadMaxAge
				s.idx.mu.RUnlock()
				if !old {
					continue
				}
			}
			if err := s.flushHead(); err != nil {
				s.indexFlushFailures.Add(1)
				s.logWarn("flush search index", zap.Error(err))
			}
		}
	}()
}

// maybeFlush signals the flusher when the head is full.
func (s *Store) maybeFlush() {
	s.idx.mu.RLock()
	full := s.idx.head.spans >= s.opts.HeadMaxSpans
	s.idx.mu.RUnlock()
	if full {
		select {
		case s.flushSignal <- struct{}{}:
		default:
		}
	}
}

// WaitIndex returns when the search index has no flush owed for the writes so far: it
// flushes a full head itself when the flusher has not taken it yet, and waits for a
// flush in progress (and the merges it runs). Benchmarks call it to charge writes with
// the index work they cause, which otherwise runs in the background after them.
func (s *Store) WaitIndex() error {
	s.idx.mu.RLock()
	full := s.idx.head.spans >= s.opts.HeadMaxSpans
	s.idx.mu.RUnlock()
	if full {
		return s.flushHead()
	}
	s.idx.flushMu.Lock()
	s.idx.flushMu.Unlock() //nolint:staticcheck // an empty critical section: waits for a flush
	return nil
}

func (s *Store) stopIndexFlusher() error {
	if s.flusherStop == nil {
		return nil
	}
	s.flusherStop()
	<-s.flusherDone
	return s.flushHead()
}

// loadIndex reads the segment directories and rebuilds the head from the blocks the
// block log lists past the watermark: blocks whose postings were only in memory when
// the previous process stopped.
func (s *Store) loadIndex() error {
	x := &s.idx
	x.init()
	var wm uint64
	inSegs := map[uint64]struct{}{}
	var maxSeq uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte{prefixMeta, metaIndexedSeq})
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("index watermark %x is not 8 bytes", v)
				}
				wm = binary.BigEndian.Uint64(v)
				return nil
			}); err != nil {
				return err
			}
		}
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixSegDir}})
		defer it.Close()
		var segs []*segment
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			sg, err := decodeSegDir(item.KeyCopy(nil), v)
			if err != nil {
				return err
			}
			x.lastSegID = max(x.lastSegID, sg.id)
			for _, b := range sg.blocks {
				maxSeq = max(maxSeq, b.seq)
				if b.seq > wm {
					inSegs[b.seq] = struct{}{}
				}
			}
			segs = append(segs, sg)
		}
		for _, sg := range segs {
			x.segs[sg.bucket] = append(x.segs[sg.bucket], sg)
		}
		for b, list := range x.segs {
			slices.SortFunc(list, func(a, c *segment) int {
				if a.maxStart != c.maxStart {
					if a.maxStart > c.maxStart {
						return -1
					}
					return 1
				}
				if a.id > c.id {
					return -1
				}
				return 1
			})
			x.segs[b] = list
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load search index: %w", err)
	}
	// Replay the block log past the watermark.
	var todo []headBlock
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixLog}})
		defer it.Close()
		for it.Seek(appendLogKey(nil, wm+1)); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()
			if len(key) != 9 {
				return fmt.Errorf("block log key %x is not 9 bytes", key)
			}
			seq := binary.BigEndian.Uint64(key[1:])
			maxSeq = max(maxSeq, seq)
			if _, ok := inSegs[seq]; ok {
				continue
			}
			if err := item.Value(func(v []byte) error {
				if len(v) != 12 {
					return fmt.Errorf("block log entry %x is not 12 bytes", v)
				}
				todo = append(todo, headBlock{seq: seq, ref: blockRef{bucket: binary.BigEndian.Uint32(v), hash: binary.BigEndian.Uint64(v[4:])}})
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read block log: %w", err)
	}
	x.nextSeq = max(maxSeq, wm) + 1
	if err := s.reindexAll(todo); err != nil {
		return err
	}
	s.indexReplayed.Add(int64(len(todo)))
	return nil
}

// reindexAll re-indexes blocks into the head on every core: decoding a block and
// recomputing its postings is most of the work and needs no lock, and the head takes
// postings in any order (concurrent writers publish out of sequence order too). A lost
// head of 2^17 spans took Open about 0.85 s on one core.
func (s *Store) reindexAll(blocks []headBlock) error {
	workers := min(runtime.GOMAXPROCS(0), len(blocks))
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
		errs   = make([]error, workers)
	)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				j := int(next.Add(1)) - 1
				if j >= len(blocks) {
					return
				}
				if errs[i] = s.reindex(blocks[j].seq, blocks[j].ref); errs[i] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reindex puts the postings of a stored block back into the head.
func (s *Store) reindex(seq uint64, ref blockRef) error {
	var td ptrace.Traces
	found := false
	err := s.db.View(func(txn *badger.Txn) error {
		var key [blockKeyLen]byte
		item, err := txn.Get(appendBlockKey(key[:0], prefixBlock, ref))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil // expired since
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			blk, err := s.decodeBlock(v)
			if err != nil {
				return err
			}
			td, found = blk.td, true
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("re-index block %x/%x: %w", ref.bucket, ref.hash, err)
	}
	if !found {
		return nil
	}
	w := scratchPool.Get().(*writeScratch)
	defer w.release()
	w.collectRefs(td)
	if len(w.refs) == 0 {
		return nil
	}
	s.planFields(w, td)
	posts := w.buildPostings(ref)
	s.idx.mu.Lock()
	s.idx.head.add(seq, ref, len(w.refs), posts)
	s.idx.mu.Unlock()
	return nil
}

// collectRefs numbers the traces of td and lists its spans.
func (w *writeScratch) collectRefs(td ptrace.Traces) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				id := spans.At(k).TraceID()
				gid, ok := w.groups[id]
				if !ok {
					gid = int32(len(w.rows))
					w.groups[id] = gid
					w.rows = append(w.rows, tableRow{id: id})
				}
				w.refs = append(w.refs, spanRef{gid: gid, rs: int32(i), ss: int32(j), sp: int32(k)})
			}
		}
	}
}
