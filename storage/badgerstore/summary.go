package badgerstore

import (
	"encoding/binary"
	"slices"
	"strings"
)

// summary is the per-trace record kept at write time, one fragment per block, and merged
// on read (FORMAT.md, "Trace summary fragments").
type summary struct {
	minStart, maxEnd uint64
	spans, errors    uint32
	hasRoot          bool
	rootStart        uint64
	rootSpanID       [8]byte // not stored: only breaks ties within one chunk
	rootService      string
	rootName         string
	blocks           []blockRef // ascending, distinct
	services         []serviceCount
	// okKnown says the services' ok counts are known: every fragment merged either
	// carries them or was written when a fragment without them meant none (FORMAT.md,
	// flags bit 1, and meta key 00 05). Fragments of older stores do not say.
	okKnown bool
}

type serviceCount struct {
	name              string
	spans, errors, ok uint32 // ok: spans with status OK
}

// unset is the count of spans with status Unset: of the service when svc is not nil, else
// of the whole trace; known is false when the fragments merged do not tell.
func (s *summary) unset(svc *serviceCount) (n uint32, known bool) {
	if !s.okKnown {
		return 0, false
	}
	if svc != nil {
		return svc.spans - min(svc.spans, svc.errors+svc.ok), true
	}
	var ok uint32
	for _, c := range s.services {
		ok += c.ok
	}
	return s.spans - min(s.spans, s.errors+ok), true
}

func capName(s string) string {
	if len(s) > maxNameLen {
		return s[:maxNameLen]
	}
	return s
}

// addService counts spans of one service; summaries hold few services, so a sorted
// slice beats a map.
func (s *summary) addService(name string, spans, errs, ok uint32) {
	name = capName(name)
	i, found := slices.BinarySearchFunc(s.services, name, func(c serviceCount, n string) int {
		return strings.Compare(c.name, n)
	})
	if !found {
		s.services = slices.Insert(s.services, i, serviceCount{name: name})
	}
	s.services[i].spans += spans
	s.services[i].errors += errs
	s.services[i].ok += ok
}

func (s *summary) addBlock(r blockRef) {
	i, found := slices.BinarySearchFunc(s.blocks, r, compareRef)
	if !found {
		s.blocks = slices.Insert(s.blocks, i, r)
	}
}

// offerRoot keeps the earliest root, then the lowest span ID, so merge order never
// changes the answer.
func (s *summary) offerRoot(start uint64, spanID [8]byte, service, name string) {
	if s.hasRoot && (start > s.rootStart || (start == s.rootStart && string(spanID[:]) >= string(s.rootSpanID[:]))) {
		return
	}
	s.hasRoot = true
	s.rootStart = start
	s.rootSpanID = spanID
	s.rootService = capName(service)
	s.rootName = capName(name)
}

// merge adds block summary c into s. s may be empty (spans == 0 and no blocks).
func (s *summary) merge(c *summary) {
	if len(s.blocks) == 0 && s.spans == 0 {
		s.minStart, s.maxEnd = c.minStart, c.maxEnd
		s.okKnown = c.okKnown
	} else {
		s.okKnown = s.okKnown && c.okKnown
		s.minStart = min(s.minStart, c.minStart)
		s.maxEnd = max(s.maxEnd, c.maxEnd)
	}
	s.spans += c.spans
	s.errors += c.errors
	if c.hasRoot {
		// Stored roots have no span ID; equal starts keep the stored one.
		if !s.hasRoot || c.rootStart < s.rootStart {
			s.hasRoot = true
			s.rootStart = c.rootStart
			s.rootService = c.rootService
			s.rootName = c.rootName
		}
	}
	for _, r := range c.blocks {
		s.addBlock(r)
	}
	for _, sc := range c.services {
		s.addService(sc.name, sc.spans, sc.errors, sc.ok)
	}
}

func (s *summary) reset() {
	blocks, services := s.blocks[:0], s.services[:0]
	*s = summary{blocks: blocks, services: services}
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func sub0(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// appendFragment encodes s as a fragment: without its blocks, since a fragment is the
// posting of one block.
func (s *summary) appendFragment(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, s.minStart)
	dst = binary.AppendUvarint(dst, sub0(s.maxEnd, s.minStart))
	dst = binary.AppendUvarint(dst, uint64(s.spans))
	dst = binary.AppendUvarint(dst, uint64(s.errors))
	var flags byte
	var root uint64
	if s.hasRoot {
		flags |= fragRoot
		root = sub0(s.rootStart, s.minStart)
	}
	for _, sc := range s.services {
		if sc.ok != 0 && fragmentOKCounts {
			flags |= fragOKCounts
			break
		}
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, root)
	dst = appendStr(dst, s.rootService)
	dst = appendStr(dst, s.rootName)
	dst = binary.AppendUvarint(dst, uint64(len(s.services)))
	for _, sc := range s.services {
		dst = appendStr(dst, sc.name)
		dst = binary.AppendUvarint(dst, uint64(sc.spans))
		dst = binary.AppendUvarint(dst, uint64(sc.errors))
		if flags&fragOKCounts != 0 {
			dst = binary.AppendUvarint(dst, uint64(sc.ok))
		}
	}
	return dst
}

// fragmentOKCounts is true; tests write fragments as a store from before the OK counts
// did by setting it false.
var fragmentOKCounts = true

// Fragment flags.
const (
	fragRoot byte = 1 << 0 // a root span was seen
	// fragOKCounts: each service's count of spans with status OK follows its errors.
	// Written only when one is not zero, so spans that leave the status unset (most)
	// cost nothing; without it a fragment of a bucket at or above the store's okFrom
	// counts none, and one below says nothing (written before the counts existed).
	fragOKCounts byte = 1 << 1
)

type byteReader struct {
	b   []byte
	bad bool
}

func (r *byteReader) take(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *byteReader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *byteReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *byteReader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *byteReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	return string(r.take(int(n)))
}

// decodeFragment parses a fragment (with no blocks); strings are copied, so b may be
// reused. okFrom says whether the fragment's bucket is at or above the store's okFrom:
// then a fragment without OK counts counts none.
func (s *summary) decodeFragment(b []byte, okFrom bool) error {
	s.reset()
	r := byteReader{b: b}
	s.minStart = r.u64()
	s.maxEnd = s.minStart + r.uvarint()
	s.spans = uint32(r.uvarint())
	s.errors = uint32(r.uvarint())
	flags := r.u8()
	s.hasRoot = flags&fragRoot != 0
	s.okKnown = okFrom || flags&fragOKCounts != 0
	root := r.uvarint()
	if s.hasRoot {
		s.rootStart = s.minStart + root
	}
	s.rootService = r.str()
	s.rootName = r.str()
	ns := r.uvarint()
	if ns > uint64(len(r.b)) {
		r.bad = true
	}
	for i := uint64(0); i < ns && !r.bad; i++ {
		sc := serviceCount{name: r.str(), spans: uint32(r.uvarint()), errors: uint32(r.uvarint())}
		if flags&fragOKCounts != 0 {
			sc.ok = uint32(r.uvarint())
		}
		s.services = append(s.services, sc)
	}
	if r.bad || len(r.b) != 0 {
		return errFragment
	}
	return nil
}
