package badgerstore

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/s2"
)

// The search index (FORMAT.md, "Search index: head and segments"). Postings — one per
// (block, field, bucket) — are not written to Badger one key each: that cost a skiplist
// insert, a memtable flush and several compactions per key, 3.6 keys per span on a
// workload with per-service attribute fields, and most of the write CPU. They go to an
// in-memory head instead, which searches read directly, and the head is flushed as a
// few large segment pages per bucket. The block log (prefix 0x04) rebuilds the head of
// a crashed process at Open; segments of a bucket are merged in tiers so that a search
// reads a bounded number of pages per bucket.

const (
	// segPageTarget is the size at which a segment page is cut (at a posting boundary).
	segPageTarget = 32 << 10
	// tracePageTarget is the page size of trace summary fragments: a trace lookup reads
	// (and decompresses) one such page per segment that may hold the trace, so they are
	// kept small.
	tracePageTarget = 4 << 10
	// segMergeFanIn segments of one level of one bucket merge into one of the next
	// level; segMergeFanInL0 of level 0 (flushed heads). A posting is rewritten once
	// per level it climbs: a bucket taking 50,000 spans/s receives ~1,400 flushes an
	// hour, which rewrite each posting about 2.7 times at 8 throughout and 1.9 with 16
	// above level 0. 16 at level 0 too left up to 15 unmerged flushes in a bucket, and
	// querybench's searches that read many summaries took about 30% more CPU. See
	// FORMAT.md, "Tiered merge", for the measurements.
	segMergeFanIn   = 16
	segMergeFanInL0 = 8
	// defaultHeadMaxSpans and defaultHeadMaxAge bound the head: its memory, and the spans
	// Open re-indexes after a crash.
	defaultHeadMaxSpans = 1 << 17
	defaultHeadMaxAge   = 5 * time.Minute
)

// posting is one posting from the head or a segment; val is its FORMAT.md posting value
// (bucket delta first).
type posting struct {
	maxStart uint64
	ref      blockRef
	seq      uint64
	val      []byte
}

// comparePosting orders newest first: maxStart, then block hash, descending — the order
// of the former posting keys walked in reverse.
func comparePosting(a, b posting) int {
	if c := cmp.Compare(b.maxStart, a.maxStart); c != 0 {
		return c
	}
	return cmp.Compare(b.ref.hash, a.ref.hash)
}

// postingOut is one posting a block contributes, before it has a sequence number.
type postingOut struct {
	bucket   uint32
	field    uint64
	maxStart uint64
	val      []byte
	trace    bool // a trace's summary fragment (field type 0x05)
}

// headRec is one posting in the head: 32 bytes.
type headRec struct {
	maxStart uint64
	fid      int32 // its field, into headIndex.fields
	block    int32 // into headIndex.blocks
	prev     int32 // previous record of the same field, -1 at the end
	off, n   uint32
}

// headField is a (field, bucket) of the head: its newest record (the chain searches
// walk), and its record count (the flush lays records out by field with it).
type headField struct {
	key   fieldKey
	last  int32
	count int32
	trace bool // a trace's field: its postings are summary fragments
}

type headBlock struct {
	ref blockRef
	seq uint64
}

// headIndex holds the postings of recent blocks in memory. Records and bytes are only
// appended; a flushed head is replaced, never reset, so a reader may keep slices of it.
type headIndex struct {
	buckets []uint32 // distinct buckets of recs
	recs    []headRec
	fields  []headField
	fids    fieldTable // (field, bucket) → index into fields
	arena   []byte
	blocks  []headBlock
	spans   int
	created time.Time
	maxSeq  uint64
	// fidScratch is add's room; touched keeps what its reads ahead read.
	fidScratch []int32
	touched    uint64
}

func newHead() *headIndex {
	return &headIndex{created: time.Now()}
}

// newHeadLike is a head sized like prev was when it was turned over: heads of a steady
// workload grow to about the same size, and growing one from empty copied its records
// and arena over and over (append's doubling: a tenth of write CPU on storebench).
func newHeadLike(prev *headIndex) *headIndex {
	h := newHead()
	h.recs = make([]headRec, 0, len(prev.recs)+len(prev.recs)/8)
	h.fields = make([]headField, 0, len(prev.fields)+len(prev.fields)/8)
	h.arena = make([]byte, 0, len(prev.arena)+len(prev.arena)/8)
	h.blocks = make([]headBlock, 0, len(prev.blocks)+len(prev.blocks)/8)
	h.fids.size(len(prev.fields) + len(prev.fields)/8)
	return h
}

func (h *headIndex) add(seq uint64, ref blockRef, spans int, posts []postingOut) {
	bi := int32(len(h.blocks))
	h.blocks = append(h.blocks, headBlock{ref: ref, seq: seq})
	h.spans += spans
	h.maxSeq = max(h.maxSeq, seq)
	// The fields' table slots, then their entries, are read ahead in loops of
	// independent reads: each lookup otherwise waited for its own cache misses.
	h.touched += h.fids.touch(posts)
	fids := h.fidScratch[:0]
	for _, p := range posts {
		k := fieldKey{hash: p.field, bucket: p.bucket}
		fid, ok := h.fids.get(k)
		if !ok {
			fid = -1
		} else {
			h.touched += uint64(h.fields[fid].count)
		}
		fids = append(fids, fid)
	}
	h.fidScratch = fids
	for i, p := range posts {
		if n := len(h.buckets); n == 0 || h.buckets[n-1] != p.bucket {
			h.noteBucket(p.bucket)
		}
		fid := fids[i]
		if fid < 0 {
			// New in this head; a later posting of the batch may be of it too.
			k := fieldKey{hash: p.field, bucket: p.bucket}
			var ok bool
			if fid, ok = h.fids.get(k); !ok {
				fid = int32(len(h.fields))
				h.fields = append(h.fields, headField{key: k, last: -1, trace: p.trace})
				h.fids.put(k, fid)
			}
		}
		f := &h.fields[fid]
		off := uint32(len(h.arena))
		h.arena = append(h.arena, p.val...)
		h.recs = append(h.recs, headRec{maxStart: p.maxStart, fid: fid, block: bi, prev: f.last, off: off, n: uint32(len(p.val))})
		f.last = int32(len(h.recs) - 1)
		f.count++
	}
}

// noteBucket adds b to the head's buckets (a handful: the current hour and late spans').
// The bucket just added is kept last, as the cheap check in add expects.
func (h *headIndex) noteBucket(b uint32) {
	for i, o := range h.buckets {
		if o == b {
			h.buckets[i], h.buckets[len(h.buckets)-1] = h.buckets[len(h.buckets)-1], b
			return
		}
	}
	h.buckets = append(h.buckets, b)
}

// collect appends the head's postings of field in bucket b to dst.
func (h *headIndex) collect(b uint32, field uint64, dst []posting) []posting {
	fid, ok := h.fids.get(fieldKey{hash: field, bucket: b})
	if !ok {
		return dst
	}
	for i := h.fields[fid].last; i >= 0; {
		r := &h.recs[i]
		blk := h.blocks[r.block]
		dst = append(dst, posting{maxStart: r.maxStart, ref: blk.ref, seq: blk.seq, val: h.arena[r.off : r.off+r.n : r.off+r.n]})
		i = r.prev
	}
	return dst
}

// segment is the in-memory directory of one segment (FORMAT.md, prefix 0x12).
type segment struct {
	bucket   uint32
	id       uint64
	level    uint8
	maxStart uint64
	blocks   []headBlock
	first    []uint64    // per posting page, its first field
	tfirst   []uint64    // per trace page (numbered after the posting pages), its first field
	bytes    int         // postings bytes, for merge decisions and metrics
	bloom    bloomFilter // of the trace fields
}

// pages is the number of pages of sg: posting pages, then trace pages.
func (sg *segment) pages() int { return len(sg.first) + len(sg.tfirst) }

// index is the store's search index: the head being filled, heads being flushed, and
// the segment directories by bucket.
type index struct {
	mu       sync.RWMutex
	head     *headIndex
	flushing []*headIndex
	segs     map[uint32][]*segment
	// floor is the lowest bucket retention has not dropped: a flush or merge of a
	// bucket below it, which read its postings or pages before the drop, installs
	// nothing (install).
	floor uint32

	// seqMu guards the block sequence: nextSeq, and the sequences of blocks being
	// committed, which a flush's watermark must stay below.
	seqMu     sync.Mutex
	nextSeq   uint64
	inflight  map[uint64]struct{}
	lastSegID uint64

	flushMu sync.Mutex // one flush or merge at a time
}

func (x *index) init() {
	x.head = newHead()
	x.segs = map[uint32][]*segment{}
	x.inflight = map[uint64]struct{}{}
	x.nextSeq = 1
}

// allocSeq numbers a block about to be committed.
func (x *index) allocSeq() uint64 {
	x.seqMu.Lock()
	defer x.seqMu.Unlock()
	seq := x.nextSeq
	x.nextSeq++
	x.inflight[seq] = struct{}{}
	return seq
}

// publish makes a committed block's postings searchable; done releases its sequence.
func (x *index) publish(seq uint64, ref blockRef, spans int, posts []postingOut) {
	x.mu.Lock()
	x.head.add(seq, ref, spans, posts)
	x.mu.Unlock()
	x.done(seq)
}

func (x *index) done(seq uint64) {
	x.seqMu.Lock()
	delete(x.inflight, seq)
	x.seqMu.Unlock()
}

// watermark is the highest sequence below every block still being committed.
func (x *index) watermark() uint64 {
	x.seqMu.Lock()
	defer x.seqMu.Unlock()
	w := x.nextSeq - 1
	for s := range x.inflight {
		w = min(w, s-1)
	}
	return w
}

// lastSeq is the highest sequence handed out: a search's snapshot of the index.
func (x *index) lastSeq() uint64 {
	x.seqMu.Lock()
	defer x.seqMu.Unlock()
	return x.nextSeq - 1
}

// raiseFloor marks the buckets below floor as being dropped: from now on install
// refuses their segments. Retention calls it before it deletes their keys.
func (x *index) raiseFloor(floor uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.floor = max(x.floor, floor)
}

// dropBelow forgets the segments of the buckets below floor, whose keys are deleted.
func (x *index) dropBelow(floor uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.floor = max(x.floor, floor)
	for b := range x.segs {
		if b < floor {
			delete(x.segs, b)
		}
	}
}

// IndexStats describe the search index.
type IndexStats struct {
	HeadSpans, HeadPostings int
	Segments                int
	SegmentBytes            int64
}

func (x *index) stats() IndexStats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	st := IndexStats{HeadSpans: x.head.spans, HeadPostings: len(x.head.recs)}
	for _, h := range x.flushing {
		st.HeadSpans += h.spans
		st.HeadPostings += len(h.recs)
	}
	for _, list := range x.segs {
		st.Segments += len(list)
		for _, sg := range list {
			st.SegmentBytes += int64(sg.bytes)
		}
	}
	return st
}

// --- keys and codecs -------------------------------------------------------------

func appendLogKey(dst []byte, seq uint64) []byte {
	dst = append(dst, prefixLog)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func appendSegDirKey(dst []byte, bucket uint32, id uint64) []byte {
	dst = append(dst, prefixSegDir)
	dst = binary.BigEndian.AppendUint32(dst, bucket)
	return binary.BigEndian.AppendUint64(dst, id)
}

func appendSegPageKey(dst []byte, bucket uint32, id uint64, page uint32) []byte {
	dst = append(dst, prefixSegPage)
	dst = binary.BigEndian.AppendUint32(dst, bucket)
	dst = binary.BigEndian.AppendUint64(dst, id)
	return binary.BigEndian.AppendUint32(dst, page)
}

func (sg *segment) appendDir(dst []byte) []byte {
	dst = append(dst, sg.level)
	dst = binary.BigEndian.AppendUint64(dst, sg.maxStart)
	dst = binary.AppendUvarint(dst, uint64(sg.bytes))
	dst = binary.AppendUvarint(dst, uint64(len(sg.blocks)))
	for _, b := range sg.blocks {
		dst = binary.AppendUvarint(dst, uint64(b.ref.bucket-sg.bucket))
		dst = binary.BigEndian.AppendUint64(dst, b.ref.hash)
		dst = binary.AppendUvarint(dst, b.seq)
	}
	dst = binary.AppendUvarint(dst, uint64(len(sg.first)))
	for _, f := range sg.first {
		dst = binary.BigEndian.AppendUint64(dst, f)
	}
	dst = binary.AppendUvarint(dst, uint64(len(sg.tfirst)))
	for _, f := range sg.tfirst {
		dst = binary.BigEndian.AppendUint64(dst, f)
	}
	return sg.bloom.appendTo(dst)
}

var errBadSegment = errors.New("segment directory truncated or malformed")

func decodeSegDir(key, val []byte) (*segment, error) {
	if len(key) != 13 || key[0] != prefixSegDir {
		return nil, fmt.Errorf("segment directory key %x: %w", key, errBadSegment)
	}
	sg := &segment{bucket: binary.BigEndian.Uint32(key[1:5]), id: binary.BigEndian.Uint64(key[5:13])}
	r := byteReader{b: val}
	sg.level = r.u8()
	sg.maxStart = r.u64()
	sg.bytes = int(r.uvarint())
	n := r.uvarint()
	if n > uint64(len(r.b))/10 {
		return nil, fmt.Errorf("segment directory %x: %w", key, errBadSegment)
	}
	sg.blocks = make([]headBlock, n)
	for i := range sg.blocks {
		d := r.uvarint()
		sg.blocks[i].ref = blockRef{bucket: sg.bucket + uint32(d), hash: r.u64()}
		sg.blocks[i].seq = r.uvarint()
	}
	np := r.uvarint()
	if np > uint64(len(r.b))/8 {
		return nil, fmt.Errorf("segment directory %x: %w", key, errBadSegment)
	}
	sg.first = make([]uint64, np)
	for i := range sg.first {
		sg.first[i] = r.u64()
	}
	nt := r.uvarint()
	if nt > uint64(len(r.b))/8 {
		return nil, fmt.Errorf("segment directory %x: %w", key, errBadSegment)
	}
	sg.tfirst = make([]uint64, nt)
	for i := range sg.tfirst {
		sg.tfirst[i] = r.u64()
	}
	sg.bloom.decode(&r)
	if r.bad || len(r.b) != 0 {
		return nil, fmt.Errorf("segment directory %x: %w", key, errBadSegment)
	}
	return sg, nil
}

// segEntry is one posting a flush writes into a segment. It holds no pointer: a flush
// lays out one per head record (hundreds of thousands) in an order unrelated to the
// head's. Its value is kept inline when it is short, as most are (a trace's row or a
// few), so that writing pages reads the entries in order, not the arena at random.
type segEntry struct {
	field    uint64
	maxStart uint64
	hash     uint64 // block hash, the tie-break of comparePosting
	block    uint32 // into the segment's blocks
	n        uint32 // the posting value's length
	// The value when n ≤ inlineVal; else the little-endian offset of it in the arena
	// the entries were made with.
	val [inlineVal]byte
}

const inlineVal = 16

// setVal records the posting value arena[off:off+n].
func (e *segEntry) setVal(arena []byte, off, n uint32) {
	e.n = n
	if n <= inlineVal {
		copy(e.val[:], arena[off:off+n])
	} else {
		binary.LittleEndian.PutUint64(e.val[:8], uint64(off))
	}
}

// value is the entry's posting value; arena is the one it was made with.
func (e *segEntry) value(arena []byte) []byte {
	if e.n <= inlineVal {
		return e.val[:e.n]
	}
	off := binary.LittleEndian.Uint64(e.val[:8])
	return arena[off : off+uint64(e.n)]
}

func compareSegEntry(a, b segEntry) int {
	if c := cmp.Compare(a.field, b.field); c != 0 {
		return c
	}
	if c := cmp.Compare(b.maxStart, a.maxStart); c != 0 {
		return c
	}
	return cmp.Compare(b.hash, a.hash)
}

// encodePages cuts sorted entries, made with arena, into pages: per field, fieldHash
// uint64 | n uvarint | byteLen uvarint | n × (block uvarint | prevMax - maxStart uvarint
// | len uvarint | val); a field may continue on the next page. It returns the pages and
// each page's first field.
func encodePages(ents []segEntry, arena []byte, segMax uint64, target int) (pages [][]byte, first []uint64) {
	w := newPageWriter(segMax, target)
	writeEntries(w, ents, arena)
	return w.finish()
}

// writeEntries writes sorted entries, made with arena, into w's pages (encodePages).
func writeEntries(w *pageWriter, ents []segEntry, arena []byte) {
	// Entries are written straight into the page writer's page: a field's byte length
	// is counted before its header is written (copying bodies into pages was a third of
	// encoding them; a merge's pageWriter.add does copy, not knowing a part's length).
	target := w.target
	for i := 0; i < len(ents); {
		f := ents[i].field
		// The entries of f that go on this page: at least one on an empty page.
		prevMax, blen, j := w.segMax, 0, i
		for j < len(ents) && ents[j].field == f {
			if (w.nParts > 0 || j > i) && len(w.page)-pageReserve+blen >= target {
				break
			}
			e := &ents[j]
			blen += uvarintLen(uint64(e.block)) + uvarintLen(prevMax-e.maxStart) + uvarintLen(uint64(e.n)) + int(e.n)
			prevMax = e.maxStart
			j++
		}
		if j == i {
			w.flushPage() // full before f's first entry
			continue
		}
		if w.nParts == 0 {
			w.first = append(w.first, f)
		}
		page := binary.BigEndian.AppendUint64(w.page, f)
		page = binary.AppendUvarint(page, uint64(j-i))
		page = binary.AppendUvarint(page, uint64(blen))
		prevMax = w.segMax
		for k := i; k < j; k++ {
			e := &ents[k]
			page = binary.AppendUvarint(page, uint64(e.block))
			page = binary.AppendUvarint(page, prevMax-e.maxStart)
			page = binary.AppendUvarint(page, uint64(e.n))
			page = append(page, e.value(arena)...)
			prevMax = e.maxStart
		}
		w.page = page
		w.nParts++
		if j < len(ents) && ents[j].field == f {
			w.flushPage() // f continues on the next page
		}
		i = j
	}
}

// uvarintLen is the length of x as a uvarint.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// pagePostings appends the postings of field found in a page to dst.
func pagePostings(sg *segment, page []byte, field uint64, dst []posting) ([]posting, error) {
	r := byteReader{b: page}
	nf := r.uvarint()
	for i := uint64(0); i < nf && !r.bad; i++ {
		f := r.u64()
		n := r.uvarint()
		blen := r.uvarint()
		if r.bad || blen > uint64(len(r.b)) {
			return dst, errBadSegment
		}
		body := r.take(int(blen))
		if f < field {
			continue
		}
		if f > field {
			return dst, nil
		}
		br := byteReader{b: body}
		prevMax := sg.maxStart
		for j := uint64(0); j < n; j++ {
			bi := br.uvarint()
			d := br.uvarint()
			l := br.uvarint()
			if br.bad || bi >= uint64(len(sg.blocks)) || d > prevMax || l > uint64(len(br.b)) {
				return dst, errBadSegment
			}
			prevMax -= d
			blk := sg.blocks[bi]
			dst = append(dst, posting{maxStart: prevMax, ref: blk.ref, seq: blk.seq, val: br.take(int(l))})
		}
		if br.bad {
			return dst, errBadSegment
		}
	}
	if r.bad {
		return dst, errBadSegment
	}
	return dst, nil
}

// pagesOf returns the range [lo, hi) of the pages whose first fields are first that may
// hold field.
func pagesOf(first []uint64, field uint64) (lo, hi int) {
	hi = sort.Search(len(first), func(i int) bool { return first[i] > field })
	lo = sort.Search(len(first), func(i int) bool { return first[i] >= field })
	if lo > 0 {
		lo-- // the field may start at the end of the page before
	}
	return lo, hi
}

// segFragments appends the summary fragments of trace field f in segment sg to dst.
func (s *Store) segFragments(txn *badger.Txn, sg *segment, f uint64, dst []posting) ([]posting, error) {
	return s.fieldPages(txn, sg, sg.tfirst, len(sg.first), f, dst)
}

// segPostings appends the postings of the fields in segment sg to dst, read in txn.
func (s *Store) segPostings(txn *badger.Txn, sg *segment, fields []uint64, dst []posting) ([]posting, error) {
	for _, f := range fields {
		var err error
		if dst, err = s.fieldPages(txn, sg, sg.first, 0, f, dst); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// fieldPages appends field f's postings from the run of sg's pages that starts at page
// number base and whose first fields are first.
func (s *Store) fieldPages(txn *badger.Txn, sg *segment, first []uint64, base int, f uint64, dst []posting) ([]posting, error) {
	var key [17]byte
	lo, hi := pagesOf(first, f)
	for p := lo; p < hi; p++ {
		page, found, err := s.readSegPage(txn, appendSegPageKey(key[:0], sg.bucket, sg.id, uint32(base+p)))
		if err != nil {
			return dst, err
		}
		if !found {
			return dst, nil // dropped by retention under the read
		}
		if dst, err = pagePostings(sg, page, f, dst); err != nil {
			return dst, fmt.Errorf("segment page %x: %w", key, err)
		}
	}
	return dst, nil
}

// readSegPage reads and decompresses a segment page into a new slice (postings keep
// slices of it).
func (s *Store) readSegPage(txn *badger.Txn, key []byte) ([]byte, bool, error) {
	return s.readSegPageInto(txn, key, nil)
}

// readSegPageInto is readSegPage decoding into dst when it has room.
func (s *Store) readSegPageInto(txn *badger.Txn, key, dst []byte) ([]byte, bool, error) {
	var page []byte
	found, err := s.readValue(txn, key, func(v []byte) error {
		var err error
		switch {
		case len(v) > 0 && v[0] == codecZstdPage:
			page, err = s.dec.DecodeAll(v[1:], dst[:0])
		case len(v) > 0 && v[0] == codecS2Page:
			page, err = s2.Decode(dst, v[1:])
		default:
			return fmt.Errorf("unknown segment page codec (value starts %x)", v[:min(len(v), 1)])
		}
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("read segment page %x: %w", key, err)
	}
	return page, found, nil
}
