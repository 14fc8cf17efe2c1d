package badgerstore

import (
	"encoding/binary"
	"fmt"
)

// A merge streams its segments' pages into the merged segment's: field parts are
// taken in field order across the segments, and their entries rewritten one by one
// (the block renumbered, the first entry's start re-based) without being decoded into
// postings, sorted or encoded again. Each segment's pages are read one at a time, as
// its cursor reaches them, and each merged page is handed on as soon as it is cut, so
// a merge holds about one page per segment however large the segments are. See
// FORMAT.md, "Tiered merge".

// pageSource returns page p of the merge group's segment gi, decoded into dst when it
// has room; found is false for a page that is not there.
type pageSource func(gi, p int, dst []byte) (page []byte, found bool, err error)

// partCursor walks the field parts of one segment's pages (posting or trace pages), in
// order. A part is one field header and its entries; a field may have several.
type partCursor struct {
	src    pageSource
	gi     int // the segment, in the merge group
	next   int // the page after the current one
	end    int // one past the cursor's last page
	buf    []byte
	r      byteReader // the current page, past the parts read
	left   uint64     // parts left in the current page
	segMax uint64     // the segment's maxStart: each part's first entry counts from it
	blocks int        // the segment's block count
	base   uint32     // where its blocks start in the merged segment's table

	// The current part; ok is false past the last one.
	ok    bool
	field uint64
	n     uint64
	body  []byte
}

// advance moves to the next part.
func (c *partCursor) advance() error {
	for c.left == 0 {
		if c.next == c.end {
			c.ok = false
			return nil
		}
		// The previous page's entries have all been copied: its buffer is free.
		pg, found, err := c.src(c.gi, c.next, c.buf[:0])
		if err != nil {
			return err
		}
		c.next++
		if !found {
			continue
		}
		c.buf = pg
		c.r = byteReader{b: pg}
		c.left = c.r.uvarint()
		if c.r.bad {
			return errBadSegment
		}
	}
	c.field = c.r.u64()
	c.n = c.r.uvarint()
	blen := c.r.uvarint()
	if c.r.bad || blen > uint64(len(c.r.b)) || c.n > blen {
		return errBadSegment
	}
	c.body = c.r.take(int(blen))
	c.left--
	c.ok = true
	return nil
}

// pageWriter cuts a stream of entries, in field order, into pages of about target
// bytes (FORMAT.md's page layout). Entries of a field are written into one part while
// their starts descend; an entry newer than the one before it (a merge's next segment
// overlapping the last) opens another part of the field. Pages are kept, or handed to
// emit as they are cut when it is set (the page is only lent to it).
type pageWriter struct {
	target int
	segMax uint64
	pages  [][]byte
	first  []uint64
	page   []byte
	nParts int
	emit   func(page []byte) error
	err    error // emit's first error

	// The part being written.
	field   uint64
	n       int
	prevMax uint64
	body    []byte
}

const pageReserve = binary.MaxVarintLen32

func newPageWriter(segMax uint64, target int) *pageWriter {
	w := &pageWriter{target: target, segMax: segMax}
	w.page = make([]byte, pageReserve, pageReserve+target+target/8)
	return w
}

// add writes one entry of field f.
func (w *pageWriter) add(f uint64, block uint32, maxStart uint64, val []byte) {
	if w.n > 0 && (f != w.field || maxStart > w.prevMax) {
		w.closePart()
	}
	if (w.nParts > 0 || w.n > 0) && len(w.page)-pageReserve+len(w.body) >= w.target {
		w.closePart()
		w.flushPage()
	}
	if w.n == 0 {
		w.field, w.prevMax = f, w.segMax
	}
	w.body = binary.AppendUvarint(w.body, uint64(block))
	w.body = binary.AppendUvarint(w.body, w.prevMax-maxStart)
	w.body = binary.AppendUvarint(w.body, uint64(len(val)))
	w.body = append(w.body, val...)
	w.prevMax = maxStart
	w.n++
}

func (w *pageWriter) closePart() {
	if w.n == 0 {
		return
	}
	if w.nParts == 0 {
		w.first = append(w.first, w.field)
	}
	w.page = binary.BigEndian.AppendUint64(w.page, w.field)
	w.page = binary.AppendUvarint(w.page, uint64(w.n))
	w.page = binary.AppendUvarint(w.page, uint64(len(w.body)))
	w.page = append(w.page, w.body...)
	w.body, w.n = w.body[:0], 0
	w.nParts++
}

func (w *pageWriter) flushPage() {
	if w.nParts == 0 {
		return
	}
	var hdr [pageReserve]byte
	k := binary.PutUvarint(hdr[:], uint64(w.nParts))
	copy(w.page[pageReserve-k:], hdr[:k])
	w.nParts = 0
	if w.emit != nil {
		if w.err == nil {
			w.err = w.emit(w.page[pageReserve-k:])
		}
		w.page = w.page[:pageReserve]
		return
	}
	w.pages = append(w.pages, w.page[pageReserve-k:])
	w.page = make([]byte, pageReserve, pageReserve+w.target+w.target/8)
}

// finish returns the pages (none when they were emitted) and each page's first field.
func (w *pageWriter) finish() ([][]byte, []uint64) {
	w.closePart()
	w.flushPage()
	return w.pages, w.first
}

// mergeParts writes the parts of every cursor into w in field order, the cursors'
// parts of one field in cursor order, and calls onField once per distinct field. Each
// entry's block is renumbered by its cursor's base; its start is checked against the
// part's (a damaged page is an error, never a wrong posting).
func mergeParts(cs []*partCursor, w *pageWriter, onField func(uint64)) error {
	for _, c := range cs {
		if err := c.advance(); err != nil {
			return err
		}
	}
	for {
		// The smallest field among the cursors (a handful: a linear scan).
		var f uint64
		found := false
		for _, c := range cs {
			if c.ok && (!found || c.field < f) {
				f, found = c.field, true
			}
		}
		if !found {
			return nil
		}
		if onField != nil {
			onField(f)
		}
		for _, c := range cs {
			for c.ok && c.field == f {
				if err := w.copyPart(f, c.body, c.n, c.segMax, uint64(c.blocks), c.base); err != nil {
					return err
				}
				if w.err != nil {
					return w.err
				}
				if err := c.advance(); err != nil {
					return err
				}
			}
		}
	}
}

// copyPart writes the n entries of a part's body, whose first start counts from
// segMax, each with its block number (below blocks) shifted by base. (Decoding with
// binary.Uvarint inline, rather than byteReader's calls, took 6–7% off a merge.)
func (w *pageWriter) copyPart(f uint64, body []byte, n, segMax, blocks uint64, base uint32) error {
	prevMax := segMax
	for range n {
		bi, k := binary.Uvarint(body)
		if k <= 0 || bi >= blocks {
			return errBadSegment
		}
		body = body[k:]
		d, k := binary.Uvarint(body)
		if k <= 0 || d > prevMax {
			return errBadSegment
		}
		body = body[k:]
		l, k := binary.Uvarint(body)
		if k <= 0 || l > uint64(len(body)-k) {
			return errBadSegment
		}
		body = body[k:]
		prevMax -= d
		w.add(f, base+uint32(bi), prevMax, body[:l:l])
		body = body[l:]
	}
	if len(body) != 0 {
		return errBadSegment
	}
	return nil
}

// mergePages merges group's pages, read from src, into merged, whose blocks must be
// group's block tables one after another: it hands merged's pages to emit in order,
// posting pages first, and sets merged's page lists and Bloom filter.
func mergePages(group []*segment, src pageSource, merged *segment, emit func(page []byte) error) error {
	cursors := func(trace bool) []*partCursor {
		cs := make([]*partCursor, len(group))
		base := uint32(0)
		for i, sg := range group {
			c := &partCursor{src: src, gi: i, end: len(sg.first), segMax: sg.maxStart, blocks: len(sg.blocks), base: base}
			if trace {
				c.next, c.end = len(sg.first), sg.pages()
			}
			cs[i] = c
			base += uint32(len(sg.blocks))
		}
		return cs
	}
	// merge writes the posting or the trace pages; it returns their first fields.
	merge := func(trace bool, target int, onField func(uint64)) ([]uint64, error) {
		w := newPageWriter(merged.maxStart, target)
		w.emit = emit
		if err := mergeParts(cursors(trace), w, onField); err != nil {
			return nil, err
		}
		_, first := w.finish()
		return first, w.err
	}
	var err error
	if merged.first, err = merge(false, segPageTarget, nil); err != nil {
		return fmt.Errorf("posting pages: %w", err)
	}
	// The Bloom filter has as many blocks as the merged ones together: each was sized
	// for its own trace fields, and a trace is rarely in two of them. (Counting the
	// distinct fields first would hold them all; a segment without a filter, which
	// matches everything, leaves no size to go by, and then they are counted.)
	blocks, counted := 0, false
	for _, sg := range group {
		blocks += len(sg.bloom.words) / 8
		counted = counted || len(sg.bloom.words) == 0
	}
	var traceFields []uint64
	onField := func(f uint64) { traceFields = append(traceFields, f) }
	if !counted {
		merged.bloom = bloomFilter{words: make([]uint64, blocks*8)}
		onField = merged.bloom.add
	}
	if merged.tfirst, err = merge(true, tracePageTarget, onField); err != nil {
		return fmt.Errorf("trace pages: %w", err)
	}
	if counted {
		merged.bloom = newBloom(len(traceFields))
		for _, f := range traceFields {
			merged.bloom.add(f)
		}
	}
	return nil
}
