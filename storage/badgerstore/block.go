package badgerstore

import (
	"encoding/binary"
	"errors"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// tableRow is one trace of a block (FORMAT.md, prefix 0x03): its ID and the earliest
// and latest start of its spans in the block.
type tableRow struct {
	id                 pcommon.TraceID
	minStart, maxStart uint64
}

// postingEntry is one trace of a posting (FORMAT.md, "Search posting"): a row of the block's
// trace table and the start bounds of its spans that carry the field in the bucket.
type postingEntry struct {
	row         uint32
	first, last uint64
}

var errBadTable = errors.New("block trace table truncated")

func appendTable(dst []byte, rows []tableRow) []byte {
	base := uint64(0)
	for i, r := range rows {
		if i == 0 || r.minStart < base {
			base = r.minStart
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(rows)))
	dst = binary.BigEndian.AppendUint64(dst, base)
	for _, r := range rows {
		dst = append(dst, r.id[:]...)
		dst = binary.AppendUvarint(dst, r.minStart-base)
		dst = binary.AppendUvarint(dst, r.maxStart-r.minStart)
	}
	return dst
}

// decodeTable appends the rows of a stored table to rows.
func decodeTable(b []byte, rows []tableRow) ([]tableRow, error) {
	r := byteReader{b: b}
	n := r.uvarint()
	base := r.u64()
	if n > uint64(len(r.b))/18 {
		return rows, errBadTable
	}
	for i := uint64(0); i < n && !r.bad; i++ {
		var row tableRow
		copy(row.id[:], r.take(16))
		row.minStart = base + r.uvarint()
		row.maxStart = row.minStart + r.uvarint()
		rows = append(rows, row)
	}
	if r.bad {
		return rows, errBadTable
	}
	return rows, nil
}

const (
	postingAllRows    byte = 1 << 0
	postingRowBounds  byte = 1 << 1
	postingKnownFlags      = postingAllRows | postingRowBounds
)

var errBadPostingValue = errors.New("posting value truncated or malformed")

// appendPosting encodes entries (rows ascending, distinct) of a block with rows. It
// writes no per-entry bounds (flag bit 1 always set): an entry then stands for its row's
// bounds — the trace's spans in the block, a superset of the spans carrying the field.
// Searches treat them as such (a window check that is not decided by them reads spans);
// the bounds cost about 6 bytes per entry, half of the index on disk.
func appendPosting(dst []byte, bucketDelta uint32, entries []postingEntry, rows []tableRow) []byte {
	dst = binary.AppendUvarint(dst, uint64(bucketDelta))
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	flags := postingKnownFlags
	if len(entries) != len(rows) {
		flags &^= postingAllRows
	}
	for i, e := range entries {
		if int(e.row) != i {
			flags &^= postingAllRows
			break
		}
	}
	dst = append(dst, flags)
	if flags&postingAllRows == 0 {
		prev := uint32(0)
		for _, e := range entries {
			dst = binary.AppendUvarint(dst, uint64(e.row-prev))
			prev = e.row
		}
	}
	return dst
}

// postingBucketDelta reads the block's bucket (relative to the posting's) from a
// posting value and returns the rest for decodeEntries.
func postingBucketDelta(b []byte) (uint32, []byte, error) {
	d, n := binary.Uvarint(b)
	if n <= 0 || d > 0xFFFFFFFF {
		return 0, nil, errBadPostingValue
	}
	return uint32(d), b[n:], nil
}

// decodeEntries appends the entries of a posting (after its bucket delta) to dst.
func decodeEntries(b []byte, rows []tableRow, dst []postingEntry) ([]postingEntry, error) {
	r := byteReader{b: b}
	n := r.uvarint()
	flags := r.u8()
	if r.bad || n > uint64(len(rows)) || flags&^postingKnownFlags != 0 {
		return dst, errBadPostingValue
	}
	start := len(dst)
	row := uint64(0)
	for i := uint64(0); i < n; i++ {
		if flags&postingAllRows != 0 {
			row = i
		} else {
			row += r.uvarint()
		}
		if r.bad || row >= uint64(len(rows)) {
			return dst, errBadPostingValue
		}
		dst = append(dst, postingEntry{row: uint32(row), first: rows[row].minStart, last: rows[row].maxStart})
	}
	if flags&postingRowBounds == 0 {
		for i := start; i < len(dst); i++ {
			dst[i].first += r.uvarint()
			dst[i].last -= r.uvarint()
		}
	}
	if r.bad {
		return dst, errBadPostingValue
	}
	return dst, nil
}
