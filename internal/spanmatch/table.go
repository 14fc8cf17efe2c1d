package spanmatch

import "math/bits"

// table is one generation of recent spans: open addressing with linear probing, keyed
// by Key (already a good 64-bit hash, never 0, so 0 marks an empty slot), a key and
// its span in one slot. A generation only grows until it is cleared whole when it turns
// over, so there is no deletion. It replaces a Go map: under ingest every span is put
// into a table of a quarter of a million spans, and the map's lookups there, a cache
// miss each, were the service graph's largest cost (5–9% of spoor's CPU end to end);
// here a lookup is mostly one slot, one cache line, and touch lets a batch's misses
// overlap instead of waiting one after another.
type table[V any] struct {
	slots []slot[V] // at most two thirds full
	n     int
	max   int // the most slots it grows to: half as many again as its capacity
}

type slot[V any] struct {
	key uint64
	v   V
}

// newTable returns a table for up to capacity entries. It starts small and grows as
// it fills, as a Go map does, so that a matcher that sees few spans, or none, holds
// little memory; kept at most two thirds full, a lookup probes about two slots on
// average over a generation's life. Full, it takes about as much memory as the Go
// map did.
func newTable[V any](capacity int) *table[V] {
	t := &table[V]{max: max(16, capacity+capacity/2)}
	t.slots = make([]slot[V], min(1024, t.max))
	return t
}

// grow moves the entries into a table twice as big (at most max slots).
func (t *table[V]) grow() {
	old := t.slots
	t.slots = make([]slot[V], min(2*len(old), t.max))
	for i := range old {
		if s := &old[i]; s.key != 0 {
			j := t.home(s.key)
			for t.slots[j].key != 0 {
				j = t.next(j)
			}
			t.slots[j] = *s
		}
	}
}

// home is key's first slot: its Fibonacci-mixed bits scaled to the table's size (keys
// made of small numbers, as tests and some callers use, spread too).
func (t *table[V]) home(key uint64) int {
	hi, _ := bits.Mul64(key*0x9e3779b97f4a7c15, uint64(len(t.slots)))
	return int(hi)
}

// get returns the entry of key, or nil.
func (t *table[V]) get(key uint64) *V {
	for i := t.home(key); ; i = t.next(i) {
		s := &t.slots[i]
		switch s.key {
		case key:
			return &s.v
		case 0:
			return nil
		}
	}
}

// put returns the entry of key, adding a zero one (the table must have room: callers
// turn a generation over before it holds its capacity), and whether it was there.
func (t *table[V]) put(key uint64) (*V, bool) {
	if 3*(t.n+1) > 2*len(t.slots) && len(t.slots) < t.max {
		t.grow()
	}
	for i := t.home(key); ; i = t.next(i) {
		s := &t.slots[i]
		switch s.key {
		case key:
			return &s.v, true
		case 0:
			s.key = key
			t.n++
			return &s.v, false
		}
	}
}

// next is the slot after i, the first after the last.
func (t *table[V]) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

// touch reads the first slot of each key and returns a value made of what it read,
// for the caller to keep so that the reads are not optimized away. The reads do not
// depend on one another, so their cache misses overlap, and the lookups that follow
// find the slots in the cache.
func (t *table[V]) touch(keys func(yield func(uint64) bool)) uint64 {
	var x uint64
	for k := range keys {
		x += t.slots[t.home(k)].key
	}
	return x
}

// all calls f with every entry.
func (t *table[V]) all(f func(key uint64, v *V)) {
	if t.n == 0 {
		return
	}
	for i := range t.slots {
		if s := &t.slots[i]; s.key != 0 {
			f(s.key, &s.v)
		}
	}
}

// reset empties the table.
func (t *table[V]) reset() {
	if t.n != 0 {
		clear(t.slots)
		t.n = 0
	}
}
