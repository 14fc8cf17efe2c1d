package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/spoortrace/spoor/internal/otlpwire"
)

// defaultChunkTarget is the uncompressed size of a block's chunks (FORMAT.md, "Block"):
// a batch of raw bytes is split into ceil(raw / target) chunks by trace.
const defaultChunkTarget = 32 << 10

// maxChunks bounds a block's chunks, and so its header, whatever the batch's size.
const maxChunks = 4096

var errBadBlockHeader = errors.New("block chunk header truncated or malformed")

// chunkCount is the number of chunks a batch of rawLen bytes is split into.
func chunkCount(rawLen, target int) int {
	if target <= 0 {
		return 1
	}
	return min(max(1, (rawLen+target-1)/target), maxChunks)
}

// blockScratch holds a writer's buffers for encoding a block.
type blockScratch struct {
	gids   []int32 // per span of the batch, in order, its trace (a row of the table)
	chunkG []int32 // per trace, its chunk
	assign []int32 // per span, its chunk
	split  otlpwire.Splitter
	comp   []byte // the chunks' frames, back to back
	ends   []int  // per chunk, where its frame ends in comp
}

// encodeBlock appends the stored value of raw, a batch's encoding, to dst: codec 2, its
// chunks split by trace and compressed one by one; codec 1 (one frame) when the store's
// chunk target is 0 (tests writing blocks as older stores did). rows are the batch's
// traces and bs.gids the trace of each of its spans, in order.
func (s *Store) encodeBlock(dst, raw []byte, rows []tableRow, bs *blockScratch) []byte {
	if s.chunkTarget == 0 {
		return s.enc.EncodeAll(raw, append(dst, codecZstdProto))
	}
	chunks := [][]byte{raw}
	if n := chunkCount(len(raw), s.chunkTarget); n > 1 {
		// The writer knows each span's trace: the splitter need not read them again
		// (that was two thirds of its cost).
		bs.chunkG = bs.chunkG[:0]
		for _, r := range rows {
			bs.chunkG = append(bs.chunkG, int32(otlpwire.ChunkOf(r.id, n)))
		}
		bs.assign = bs.assign[:0]
		for _, g := range bs.gids {
			bs.assign = append(bs.assign, bs.chunkG[g])
		}
		var err error
		if chunks, err = bs.split.SplitAssigned(raw, n, bs.assign); err != nil {
			// raw is td's encoding (marshaled, or a request checked span by span by
			// otlpwire.Encodes): it splits. Were it not to, one chunk still reads right.
			chunks = [][]byte{raw}
		}
	}
	bs.comp, bs.ends = bs.comp[:0], bs.ends[:0]
	for _, c := range chunks {
		if len(c) > 0 { // an empty chunk has no frame
			bs.comp = s.enc.EncodeAll(c, bs.comp)
		}
		bs.ends = append(bs.ends, len(bs.comp))
	}
	dst = append(dst, codecZstdChunks)
	dst = binary.AppendUvarint(dst, uint64(len(chunks)))
	prev := 0
	for _, e := range bs.ends {
		dst = binary.AppendUvarint(dst, uint64(e-prev))
		prev = e
	}
	return append(dst, bs.comp...)
}

// blockFrames appends to dst the zstd frames of a stored block value, one per chunk: a
// codec 1 block is one chunk. Chunk i holds the traces with otlpwire.ChunkOf(id, n) == i.
// The frames alias v.
func blockFrames(v []byte, dst [][]byte) ([][]byte, error) {
	if len(v) == 0 {
		return dst, errors.New("empty block value")
	}
	switch v[0] {
	case codecZstdProto:
		return append(dst, v[1:]), nil
	case codecZstdChunks:
	default:
		return dst, fmt.Errorf("unknown block codec %d", v[0])
	}
	b := v[1:]
	n, k := binary.Uvarint(b)
	// Every chunk's length takes at least a byte.
	if k <= 0 || n == 0 || n > uint64(len(b)-k) {
		return dst, errBadBlockHeader
	}
	b = b[k:]
	lens := b
	total := uint64(0)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)) {
			return dst, errBadBlockHeader
		}
		b = b[k:]
		total += l
	}
	if total != uint64(len(b)) {
		return dst, errBadBlockHeader
	}
	for range n {
		l, k := binary.Uvarint(lens)
		lens = lens[k:]
		dst = append(dst, b[:l:l])
		b = b[l:]
	}
	return dst, nil
}

// decompressFrame decompresses one chunk's frame (none for an empty chunk), appending
// to dst.
func (s *Store) decompressFrame(frame, dst []byte) ([]byte, error) {
	if len(frame) == 0 {
		return dst, nil
	}
	b, err := s.dec.DecodeAll(frame, dst)
	if err != nil {
		return nil, fmt.Errorf("decompress block: %w", err)
	}
	return b, nil
}
