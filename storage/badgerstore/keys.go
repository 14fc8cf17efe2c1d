package badgerstore

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Key prefixes and constants of schema version 1 (storage/FORMAT.md).
const (
	prefixMeta      byte = 0x00
	prefixChunk     byte = 0x01
	prefixSummary   byte = 0x02
	prefixIndex     byte = 0x10
	prefixService   byte = 0x20
	prefixOperation byte = 0x21

	metaSchemaVersion byte = 0x01
	metaBucketWidth   byte = 0x02

	schemaVersion uint32 = 1
	bucketWidth          = time.Hour

	codecZstdProto byte = 1

	fieldAll       byte = 0x00
	fieldService   byte = 0x01
	fieldOperation byte = 0x02
	fieldAttribute byte = 0x03

	// maxIndexedValue keeps unbounded attribute values out of the index: they are
	// still searchable, through another index and verification.
	maxIndexedValue = 256
	// maxNameLen caps service and span names in catalogs and summaries.
	maxNameLen = 1024

	chunkKeyLen   = 1 + 4 + 16 + 8
	summaryKeyLen = 1 + 16
	indexKeyLen   = 1 + 4 + 8 + 8 + 16
)

func bucketOf(ns uint64) uint32 {
	b := ns / uint64(bucketWidth)
	if b > 0xFFFFFFFF {
		return 0xFFFFFFFF
	}
	return uint32(b)
}

func appendChunkKey(dst []byte, bucket uint32, id pcommon.TraceID, hash uint64) []byte {
	dst = append(dst, prefixChunk)
	dst = binary.BigEndian.AppendUint32(dst, bucket)
	dst = append(dst, id[:]...)
	return binary.BigEndian.AppendUint64(dst, hash)
}

func appendChunkPrefix(dst []byte, bucket uint32, id pcommon.TraceID) []byte {
	dst = append(dst, prefixChunk)
	dst = binary.BigEndian.AppendUint32(dst, bucket)
	return append(dst, id[:]...)
}

func appendSummaryKey(dst []byte, id pcommon.TraceID) []byte {
	dst = append(dst, prefixSummary)
	return append(dst, id[:]...)
}

func appendIndexPrefix(dst []byte, bucket uint32, field uint64) []byte {
	dst = append(dst, prefixIndex)
	dst = binary.BigEndian.AppendUint32(dst, bucket)
	return binary.BigEndian.AppendUint64(dst, field)
}

func appendIndexKey(dst []byte, bucket uint32, field uint64, startNs uint64, id pcommon.TraceID) []byte {
	dst = appendIndexPrefix(dst, bucket, field)
	dst = binary.BigEndian.AppendUint64(dst, startNs)
	return append(dst, id[:]...)
}

func appendServiceKey(dst []byte, service string) []byte {
	dst = append(dst, prefixService)
	return append(dst, service...)
}

func appendOperationKey(dst []byte, service string, kind byte, name string) []byte {
	dst = append(dst, prefixOperation)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(service)))
	dst = append(dst, service...)
	dst = append(dst, kind)
	return append(dst, name...)
}

// fieldHasher computes index field hashes without allocating.
type fieldHasher struct {
	d      xxhash.Digest
	lenBuf [4]byte
}

func (h *fieldHasher) str(s string) {
	binary.BigEndian.PutUint32(h.lenBuf[:], uint32(len(s)))
	_, _ = h.d.Write(h.lenBuf[:]) // xxhash writes never fail
	_, _ = h.d.WriteString(s)
}

func (h *fieldHasher) start(typ byte) {
	h.d.Reset()
	h.lenBuf[0] = typ
	_, _ = h.d.Write(h.lenBuf[:1])
}

func (h *fieldHasher) all() uint64 {
	h.start(fieldAll)
	return h.d.Sum64()
}

func (h *fieldHasher) service(service string) uint64 {
	h.start(fieldService)
	h.str(service)
	return h.d.Sum64()
}

func (h *fieldHasher) operation(service, name string) uint64 {
	h.start(fieldOperation)
	h.str(service)
	h.str(name)
	return h.d.Sum64()
}

func (h *fieldHasher) attribute(key, value string) uint64 {
	h.start(fieldAttribute)
	h.str(key)
	h.str(value)
	return h.d.Sum64()
}

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }
