package badgerstore

import (
	"encoding/binary"
	"math/bits"
)

// bloomFilter is a blocked Bloom filter over field hashes (FORMAT.md, segment
// directory): a field sets 6 bits inside one 512-bit block, so a test touches one cache
// line. Field hashes are xxhash64 outputs, already uniform, so no other hashing is needed.
type bloomFilter struct {
	words []uint64 // len is a multiple of 8; empty: "may contain" everything
}

const (
	bloomBitsPerKey = 10
	bloomProbes     = 6
	bloomMix        = 0x9E3779B97F4A7C15
)

func newBloom(keys int) bloomFilter {
	blocks := max(1, (keys*bloomBitsPerKey+511)/512)
	return bloomFilter{words: make([]uint64, blocks*8)}
}

func (b bloomFilter) block(h uint64) []uint64 {
	n := uint64(len(b.words) / 8)
	hi, _ := bits.Mul64(h>>32, n<<32)
	i := int(hi) * 8
	return b.words[i : i+8 : i+8]
}

func (b bloomFilter) add(h uint64) {
	blk := b.block(h)
	m := h * bloomMix
	for i := 0; i < bloomProbes; i++ {
		bit := (m >> (9 * i)) & 511
		blk[bit>>6] |= 1 << (bit & 63)
	}
}

// mayContain is false only when h was never added.
func (b bloomFilter) mayContain(h uint64) bool {
	if len(b.words) == 0 {
		return true
	}
	blk := b.block(h)
	m := h * bloomMix
	for i := 0; i < bloomProbes; i++ {
		bit := (m >> (9 * i)) & 511
		if blk[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

func (b bloomFilter) appendTo(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b.words)))
	for _, w := range b.words {
		dst = binary.BigEndian.AppendUint64(dst, w)
	}
	return dst
}

func (b *bloomFilter) decode(r *byteReader) {
	n := r.uvarint()
	if n%8 != 0 || n > uint64(len(r.b))/8 {
		r.bad = true
		return
	}
	b.words = make([]uint64, n)
	for i := range b.words {
		b.words[i] = r.u64()
	}
}
