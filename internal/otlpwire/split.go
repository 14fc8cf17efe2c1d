package otlpwire

import (
	"bytes"
	"errors"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// ChunkOf returns the chunk, of n, that Split puts the spans of trace id in: a hash of
// the whole ID, not some of its bits (IDs have structure: 64-bit ones have a zero high
// half).
func ChunkOf(id pcommon.TraceID, n int) int {
	if n <= 1 {
		return 0
	}
	return int(xxhash.Sum64(id[:]) % uint64(n))
}

// Splitter cuts the protobuf encoding of an OTLP TracesData into chunks by trace. Its
// buffers are reused from one Split to the next; the zero value is ready.
type Splitter struct {
	spanChunk []int32     // per span of the batch, its chunk
	acc       []int       // per chunk, bytes of the message being measured
	touched   []int32     // chunks with spans in the message being measured
	rsAcc     []int       // per chunk, bytes of the resource being measured
	rsTouched []int32     // chunks with spans in the resource being measured
	ssSizes   []chunkSize // per scope, its content's size in each chunk it is in
	ssCount   []int       // per scope, its entries in ssSizes
	rsSizes   []chunkSize // per resource, its content's size in each chunk it is in
	rsCount   []int       // per resource, its entries in rsSizes
	out       []int       // per chunk, its size
	buf       []byte
	chunks    [][]byte
	// The fields other than spans of every scope, then of every resource, back to back,
	// and where each one's end.
	ssOther, rsOther       []byte
	ssOtherEnd, rsOtherEnd []int
}

// chunkSize is the size of the content of a resource's or scope's message in a chunk.
type chunkSize struct {
	chunk int32
	size  int
}

// errSpanCount is returned by SplitAssigned when the batch does not hold one span per
// assigned chunk.
var errSpanCount = errors.New("otlpwire: batch does not hold as many spans as chunks assigned")

// Split cuts raw, an encoded TracesData (or ExportTraceServiceRequest), into n encoded
// TracesData: chunk ChunkOf(id, n) holds every span of trace id, in the order of raw,
// with its resource and scope — every field of its ResourceSpans and ScopeSpans other
// than the spans, as raw has them. Every span lands in exactly one chunk; resources and
// scopes without a span, and top-level fields other than resource_spans, land in none.
// Decoding the chunks one after the other (concatenated, a protobuf merge) gives raw's
// spans back, grouped by chunk.
//
// With n <= 1 the one chunk is raw itself. Other chunks are valid until the next Split.
// Bytes that are not a well-formed TracesData return ErrMalformed.
func (sp *Splitter) Split(raw []byte, n int) ([][]byte, error) {
	if n <= 1 {
		return [][]byte{raw}, nil // not kept: the Splitter holds no reference to raw
	}
	return sp.split(raw, n, nil)
}

// SplitAssigned is Split for a caller that knows the chunk of each span of raw, in
// order (its trace's ChunkOf): raw's trace IDs are then not read. It returns an error
// when raw does not hold exactly len(spanChunk) spans or a chunk is out of range.
func (sp *Splitter) SplitAssigned(raw []byte, n int, spanChunk []int32) ([][]byte, error) {
	if n <= 1 {
		return [][]byte{raw}, nil
	}
	for _, c := range spanChunk {
		if c < 0 || int(c) >= n {
			return nil, errors.New("otlpwire: assigned chunk out of range")
		}
	}
	return sp.split(raw, n, spanChunk)
}

// isScopeSpans reports whether a field of a ResourceSpans holds scopes with their spans:
// scope_spans, or instrumentation_library_spans of older senders (split too, under its
// own number, or its spans would be copied into every chunk of the resource).
func isScopeSpans(num protowire.Number, typ protowire.Type) bool {
	return (num == fieldResourceSpansScopeSpans || num == FieldResourceSpansDeprecatedScopeSpans) && typ == protowire.BytesType
}

func sizeOfMessage(num protowire.Number, content int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(content)
}

// split measures every chunk's resources and scopes in a first walk, then copies each
// span once, into its chunk's place in one buffer. (Building each message in a buffer
// of its own and copying it into its parent's copied every span three times.)
func (sp *Splitter) split(raw []byte, n int, assign []int32) ([][]byte, error) {
	sp.acc = resize(sp.acc, n)
	sp.rsAcc = resize(sp.rsAcc, n)
	sp.out = resize(sp.out, n)
	sp.touched, sp.rsTouched = sp.touched[:0], sp.rsTouched[:0]
	sp.ssSizes, sp.ssCount, sp.rsSizes, sp.rsCount = sp.ssSizes[:0], sp.ssCount[:0], sp.rsSizes[:0], sp.rsCount[:0]
	sp.ssOther, sp.rsOther, sp.ssOtherEnd, sp.rsOtherEnd = sp.ssOther[:0], sp.rsOther[:0], sp.ssOtherEnd[:0], sp.rsOtherEnd[:0]
	if assign == nil {
		sp.spanChunk = sp.spanChunk[:0]
	}
	var (
		lastID  []byte
		lastC   int32
		hashed  bool
		spanIdx int
	)
	// First walk: each span's chunk, and the size of each scope and resource in each
	// chunk that has some of its spans.
	for i := 0; i < len(raw); {
		num, typ, r0, r1, next := nextField(raw, i)
		if next < 0 {
			return nil, ErrMalformed
		}
		i = next
		if num != fieldTracesDataResourceSpans || typ != protowire.BytesType {
			continue
		}
		rs := raw[r0:r1]
		rsOther := len(sp.rsOther)
		for j := 0; j < len(rs); {
			num, typ, s0, s1, next := nextField(rs, j)
			if next < 0 {
				return nil, ErrMalformed
			}
			if !isScopeSpans(num, typ) {
				sp.rsOther = append(sp.rsOther, rs[j:next]...)
				j = next
				continue
			}
			j = next
			ss := rs[s0:s1]
			ssOther := len(sp.ssOther)
			for k := 0; k < len(ss); {
				snum, styp, p0, p1, next := nextField(ss, k)
				if next < 0 {
					return nil, ErrMalformed
				}
				fieldLen := next - k
				if snum != fieldScopeSpansSpans || styp != protowire.BytesType {
					sp.ssOther = append(sp.ssOther, ss[k:next]...)
					k = next
					continue
				}
				k = next
				var c int32
				if assign != nil {
					if spanIdx >= len(assign) {
						return nil, errSpanCount
					}
					c = assign[spanIdx]
				} else {
					id, _, err := spanTraceIDField(ss[p0:p1])
					if err != nil {
						return nil, err
					}
					// Spans of a trace usually come together: hash each ID once.
					if !hashed || !bytes.Equal(id, lastID) {
						var tid pcommon.TraceID
						copy(tid[:], id)
						lastID, lastC, hashed = id, int32(ChunkOf(tid, n)), true
					}
					c = lastC
					sp.spanChunk = append(sp.spanChunk, c)
				}
				spanIdx++
				if sp.acc[c] == 0 {
					sp.touched = append(sp.touched, c)
				}
				sp.acc[c] += fieldLen
			}
			sp.ssOtherEnd = append(sp.ssOtherEnd, len(sp.ssOther))
			ssOther = len(sp.ssOther) - ssOther
			for _, c := range sp.touched {
				size := ssOther + sp.acc[c]
				sp.ssSizes = append(sp.ssSizes, chunkSize{chunk: c, size: size})
				if sp.rsAcc[c] == 0 {
					sp.rsTouched = append(sp.rsTouched, c)
				}
				sp.rsAcc[c] += sizeOfMessage(num, size)
				sp.acc[c] = 0
			}
			sp.ssCount = append(sp.ssCount, len(sp.touched))
			sp.touched = sp.touched[:0]
		}
		sp.rsOtherEnd = append(sp.rsOtherEnd, len(sp.rsOther))
		rsOther = len(sp.rsOther) - rsOther
		for _, c := range sp.rsTouched {
			size := rsOther + sp.rsAcc[c]
			sp.rsSizes = append(sp.rsSizes, chunkSize{chunk: c, size: size})
			sp.out[c] += sizeOfMessage(fieldTracesDataResourceSpans, size)
			sp.rsAcc[c] = 0
		}
		sp.rsCount = append(sp.rsCount, len(sp.rsTouched))
		sp.rsTouched = sp.rsTouched[:0]
	}
	if assign != nil && spanIdx != len(assign) {
		return nil, errSpanCount
	}
	if assign == nil {
		assign = sp.spanChunk
	}

	// Second walk: headers and other fields of each resource and scope into the chunks
	// that hold some of its spans, then the spans into their chunks.
	total := 0
	for _, s := range sp.out {
		total += s
	}
	if cap(sp.buf) < total {
		sp.buf = make([]byte, 0, total)
	}
	sp.chunks = sp.chunks[:0]
	off := 0
	for _, s := range sp.out {
		sp.chunks = append(sp.chunks, sp.buf[off:off:off+s])
		off += s
	}
	spanIdx = 0
	ssSizes, rsSizes := sp.ssSizes, sp.rsSizes
	ssCount, rsCount := sp.ssCount, sp.rsCount
	ssOther, rsOther := sp.ssOther, sp.rsOther
	ssOtherEnd, rsOtherEnd := sp.ssOtherEnd, sp.rsOtherEnd
	for i := 0; i < len(raw); {
		num, typ, r0, r1, nx := nextField(raw, i)
		i = nx
		if num != fieldTracesDataResourceSpans || typ != protowire.BytesType {
			continue
		}
		rs := raw[r0:r1]
		entries := rsSizes[:rsCount[0]]
		rsSizes, rsCount = rsSizes[rsCount[0]:], rsCount[1:]
		n := rsOtherEnd[0] - (len(sp.rsOther) - len(rsOther))
		other := rsOther[:n]
		rsOther, rsOtherEnd = rsOther[n:], rsOtherEnd[1:]
		for _, e := range entries {
			ch := &sp.chunks[e.chunk]
			*ch = protowire.AppendTag(*ch, fieldTracesDataResourceSpans, protowire.BytesType)
			*ch = protowire.AppendVarint(*ch, uint64(e.size))
			*ch = append(*ch, other...)
		}
		for j := 0; j < len(rs); {
			num, typ, s0, s1, nx := nextField(rs, j)
			j = nx
			if !isScopeSpans(num, typ) {
				continue
			}
			ss := rs[s0:s1]
			entries := ssSizes[:ssCount[0]]
			ssSizes, ssCount = ssSizes[ssCount[0]:], ssCount[1:]
			n := ssOtherEnd[0] - (len(sp.ssOther) - len(ssOther))
			other := ssOther[:n]
			ssOther, ssOtherEnd = ssOther[n:], ssOtherEnd[1:]
			for _, e := range entries {
				ch := &sp.chunks[e.chunk]
				*ch = protowire.AppendTag(*ch, num, protowire.BytesType)
				*ch = protowire.AppendVarint(*ch, uint64(e.size))
				*ch = append(*ch, other...)
			}
			for k := 0; k < len(ss); {
				snum, styp, _, _, nx := nextField(ss, k)
				if snum == fieldScopeSpansSpans && styp == protowire.BytesType {
					ch := &sp.chunks[assign[spanIdx]]
					*ch = append(*ch, ss[k:nx]...)
					spanIdx++
				}
				k = nx
			}
		}
	}
	return sp.chunks, nil
}

func resize(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	s = s[:n]
	clear(s)
	return s
}
