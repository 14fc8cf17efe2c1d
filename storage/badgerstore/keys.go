package badgerstore

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Key prefixes and constants of schema version 5 (storage/FORMAT.md).
const (
	prefixMeta      byte = 0x00
	prefixBlock     byte = 0x01
	prefixTable     byte = 0x03
	prefixLog       byte = 0x04
	prefixTombstone byte = 0x05
	prefixSegPage   byte = 0x11
	prefixSegDir    byte = 0x12
	prefixService   byte = 0x20
	prefixOperation byte = 0x21
	// prefixValue catalogs the values of the attribute keys readers asked for.
	prefixValue byte = 0x23
	// prefixDependency is bucketed like the data families (retention drops it).
	prefixDependency byte = 0x22

	metaSchemaVersion byte = 0x01
	metaBucketWidth   byte = 0x02
	metaIndexedSeq    byte = 0x03
	// metaStatusFrom is the first bucket whose blocks all carry status OK fields: stores
	// written before the field existed hold blocks without it below.
	metaStatusFrom byte = 0x04
	// metaOKFrom is the first bucket whose blocks' summary fragments all count their
	// spans with status OK (fragment flags bit 1).
	metaOKFrom byte = 0x05

	schemaVersion uint32 = 5
	bucketWidth          = time.Hour

	codecZstdProto byte = 1 // a block: one zstd frame of the batch
	// codecZstdChunks is a block of trace-grouped chunks, each its own zstd frame
	// (FORMAT.md, "Block").
	codecZstdChunks byte = 2
	codecZstdPage   byte = 1
	codecS2Page     byte = 2

	fieldAll       byte = 0x00
	fieldService   byte = 0x01
	fieldOperation byte = 0x02
	fieldAttribute byte = 0x03
	fieldError     byte = 0x04
	fieldTrace     byte = 0x05
	fieldStatus    byte = 0x06

	// maxIndexedValue keeps unbounded attribute values out of the index: they are
	// still searchable, through another index and verification.
	maxIndexedValue = 256
	// maxNameLen caps service and span names in catalogs and summaries.
	maxNameLen = 1024

	blockKeyLen     = 1 + 4 + 8
	tombstoneKeyLen = 1 + 16
	// valueThreshold sends blocks (and big trace tables) to Badger's value log, written
	// once, instead of through every LSM compaction.
	valueThreshold = 1 << 10
)

func bucketOf(ns uint64) uint32 {
	b := ns / uint64(bucketWidth)
	if b > 0xFFFFFFFF {
		return 0xFFFFFFFF
	}
	return uint32(b)
}

// blockRef names a block (and its trace table): its bucket and content hash.
type blockRef struct {
	bucket uint32
	hash   uint64
}

func compareRef(a, b blockRef) int {
	if a.bucket != b.bucket {
		if a.bucket < b.bucket {
			return -1
		}
		return 1
	}
	switch {
	case a.hash < b.hash:
		return -1
	case a.hash > b.hash:
		return 1
	}
	return 0
}

func appendBlockKey(dst []byte, prefix byte, r blockRef) []byte {
	dst = append(dst, prefix)
	dst = binary.BigEndian.AppendUint32(dst, r.bucket)
	return binary.BigEndian.AppendUint64(dst, r.hash)
}

// appendTombstoneKey is the key of a deleted trace's tombstone.
func appendTombstoneKey(dst []byte, id pcommon.TraceID) []byte {
	dst = append(dst, prefixTombstone)
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

// fieldHasher computes index field hashes without allocating. It lays the hashed bytes
// out in a reused buffer and hashes them in one call: streaming them through an
// xxhash.Digest, four writes per attribute, cost twice as much on the ingest path.
type fieldHasher struct {
	buf []byte
}

func (h *fieldHasher) str(s string) {
	h.buf = binary.BigEndian.AppendUint32(h.buf, uint32(len(s)))
	h.buf = append(h.buf, s...)
}

func (h *fieldHasher) start(typ byte) {
	h.buf = append(h.buf[:0], typ)
}

func (h *fieldHasher) sum() uint64 { return xxhash.Sum64(h.buf) }

func (h *fieldHasher) all() uint64 {
	h.start(fieldAll)
	return h.sum()
}

func (h *fieldHasher) service(service string) uint64 {
	h.start(fieldService)
	h.str(service)
	return h.sum()
}

func (h *fieldHasher) operation(service, name string) uint64 {
	h.start(fieldOperation)
	h.str(service)
	h.str(name)
	return h.sum()
}

// trace is the field of one trace: its postings' values are the trace's summary
// fragments, one per block.
func (h *fieldHasher) trace(id pcommon.TraceID) uint64 {
	h.start(fieldTrace)
	h.buf = append(h.buf, id[:]...)
	return h.sum()
}

// errors is the field of the spans of service with status Error.
func (h *fieldHasher) errors(service string) uint64 {
	h.start(fieldError)
	h.str(service)
	return h.sum()
}

// statusOKType is fieldStatus; tests write blocks as a store without status OK fields did
// by setting it to a type no search walks.
var statusOKType = fieldStatus

// statusOK is the field of the spans of service with status OK. (Status Error has its
// own type, 0x04, older than this one; Unset, the status of most spans, has none: see
// FORMAT.md.)
func (h *fieldHasher) statusOK(service string) uint64 {
	h.start(statusOKType)
	h.buf = append(h.buf, byte(ptrace.StatusCodeOk))
	h.str(service)
	return h.sum()
}

// attribute is the field of an attribute on a span of service: scoped by service, as
// Jaeger's tag index is, so that a search for a service and an attribute walks exactly
// the traces with a span of that service carrying it.
func (h *fieldHasher) attribute(service, key, value string) uint64 {
	h.start(fieldAttribute)
	h.str(service)
	h.str(key)
	h.str(value)
	return h.sum()
}
