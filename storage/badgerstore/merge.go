package badgerstore

import (
	"encoding/binary"
	"fmt"
)

// A merge streams its segments' pages into the merged segment's: field parts are
// taken in field order across the segments, and their entries rewritten one by one
// (the block renumbered, the first entry's start re-based) without being decoded into
// postings, sorted or encoded again. See FORMAT.md, "Tiered merge".

// partCursor walks the field parts of one segment's pages (posting or trace pages), in
// order. A part is one field header and its entries; a field may have several.
type partCursor struct {
	pages  [][]byte
	next   int        // the page after the current one
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
		if c.next == len(c.pages) {
			c.ok = false
			return nil
		}
		c.r = byteReader{b: c.pages[c.next]}
		c.next++
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
// overlapping the last) opens another part of the field.
type pageWriter struct {
	target int
	segMax uint64
	pages  [][]byte
	first  []uint64
	page   []byte
	nParts int

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
	w.pages = append(w.pages, w.page[pageReserve-k:])
	w.page, w.nParts = make([]byte, pageReserve, pageReserve+w.target+w.target/8), 0
}

// finish returns the pages and each page's first field.
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
				r := byteReader{b: c.body}
				prevMax := c.segMax
				for j := uint64(0); j < c.n; j++ {
					bi, d, l := r.uvarint(), r.uvarint(), r.uvarint()
					if r.bad || bi >= uint64(c.blocks) || d > prevMax || l > uint64(len(r.b)) {
						return errBadSegment
					}
					prevMax -= d
					w.add(f, c.base+uint32(bi), prevMax, r.take(int(l)))
				}
				if r.bad || len(r.b) != 0 {
					return errBadSegment
				}
				if err := c.advance(); err != nil {
					return err
				}
			}
		}
	}
}

// mergePages merges group's decoded pages (posts[i] and traces[i] are group[i]'s
// posting and trace pages, in order) into merged, whose blocks must be group's block
// tables one after another: it sets merged's page lists and Bloom filter and returns
// its pages, posting pages first.
func mergePages(group []*segment, posts, traces [][][]byte, merged *segment) ([][]byte, error) {
	cursors := func(pages [][][]byte) []*partCursor {
		cs := make([]*partCursor, len(group))
		base := uint32(0)
		for i, sg := range group {
			cs[i] = &partCursor{pages: pages[i], segMax: sg.maxStart, blocks: len(sg.blocks), base: base}
			base += uint32(len(sg.blocks))
		}
		return cs
	}
	pw := newPageWriter(merged.maxStart, segPageTarget)
	if err := mergeParts(cursors(posts), pw, nil); err != nil {
		return nil, fmt.Errorf("posting pages: %w", err)
	}
	pages, first := pw.finish()
	var traceFields []uint64
	tw := newPageWriter(merged.maxStart, tracePageTarget)
	if err := mergeParts(cursors(traces), tw, func(f uint64) { traceFields = append(traceFields, f) }); err != nil {
		return nil, fmt.Errorf("trace pages: %w", err)
	}
	tpages, tfirst := tw.finish()
	merged.first, merged.tfirst = first, tfirst
	merged.bloom = newBloom(len(traceFields))
	for _, f := range traceFields {
		merged.bloom.add(f)
	}
	return append(pages, tpages...), nil
}
