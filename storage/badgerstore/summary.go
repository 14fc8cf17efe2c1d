package badgerstore

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
)

// summary is the per-trace record merged at write time (FORMAT.md, prefix 0x02).
type summary struct {
	minStart, maxEnd uint64
	spans, errors    uint32
	hasRoot          bool
	rootStart        uint64
	rootSpanID       [8]byte // not stored: only breaks ties within one chunk
	rootService      string
	rootName         string
	buckets          []uint32 // ascending, distinct
	services         []serviceCount
}

type serviceCount struct {
	name          string
	spans, errors uint32
}

func capName(s string) string {
	if len(s) > maxNameLen {
		return s[:maxNameLen]
	}
	return s
}

// addService counts spans of one service; summaries hold few services, so a sorted
// slice beats a map.
func (s *summary) addService(name string, spans, errs uint32) {
	name = capName(name)
	i, found := slices.BinarySearchFunc(s.services, name, func(c serviceCount, n string) int {
		return strings.Compare(c.name, n)
	})
	if !found {
		s.services = slices.Insert(s.services, i, serviceCount{name: name})
	}
	s.services[i].spans += spans
	s.services[i].errors += errs
}

func (s *summary) addBucket(b uint32) {
	i, found := slices.BinarySearch(s.buckets, b)
	if !found {
		s.buckets = slices.Insert(s.buckets, i, b)
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

// merge adds chunk summary c into s. s may be empty (spans == 0 and no buckets).
func (s *summary) merge(c *summary) {
	if len(s.buckets) == 0 && s.spans == 0 {
		s.minStart, s.maxEnd = c.minStart, c.maxEnd
	} else {
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
	for _, b := range c.buckets {
		s.addBucket(b)
	}
	for _, sc := range c.services {
		s.addService(sc.name, sc.spans, sc.errors)
	}
}

func (s *summary) reset() {
	buckets, services := s.buckets[:0], s.services[:0]
	*s = summary{buckets: buckets, services: services}
}

func appendStr16(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func (s *summary) appendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, s.minStart)
	dst = binary.BigEndian.AppendUint64(dst, s.maxEnd)
	dst = binary.BigEndian.AppendUint32(dst, s.spans)
	dst = binary.BigEndian.AppendUint32(dst, s.errors)
	var flags byte
	if s.hasRoot {
		flags |= 1
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint64(dst, s.rootStart)
	dst = appendStr16(dst, s.rootService)
	dst = appendStr16(dst, s.rootName)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s.buckets)))
	for _, b := range s.buckets {
		dst = binary.BigEndian.AppendUint32(dst, b)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s.services)))
	for _, sc := range s.services {
		dst = appendStr16(dst, sc.name)
		dst = binary.BigEndian.AppendUint32(dst, sc.spans)
		dst = binary.BigEndian.AppendUint32(dst, sc.errors)
	}
	return dst
}

var errShortSummary = errors.New("summary value truncated")

type byteReader struct {
	b   []byte
	bad bool
}

func (r *byteReader) take(n int) []byte {
	if r.bad || len(r.b) < n {
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

func (r *byteReader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
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

func (r *byteReader) str16() string {
	n := int(r.u16())
	return string(r.take(n))
}

// decode parses a stored summary; strings are copied, so b may be reused.
func (s *summary) decode(b []byte) error {
	s.reset()
	r := byteReader{b: b}
	s.minStart = r.u64()
	s.maxEnd = r.u64()
	s.spans = r.u32()
	s.errors = r.u32()
	s.hasRoot = r.u8()&1 != 0
	s.rootStart = r.u64()
	s.rootService = r.str16()
	s.rootName = r.str16()
	nb := int(r.u16())
	for i := 0; i < nb && !r.bad; i++ {
		s.buckets = append(s.buckets, r.u32())
	}
	ns := int(r.u16())
	for i := 0; i < ns && !r.bad; i++ {
		name := r.str16()
		s.services = append(s.services, serviceCount{name: name, spans: r.u32(), errors: r.u32()})
	}
	if r.bad {
		return errShortSummary
	}
	return nil
}
