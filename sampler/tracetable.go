package sampler

import (
	"encoding/binary"
	"math/bits"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// traceTable is the tail stage's map of known traces, pending or decided (tailStage.known):
// open addressing with linear probing and backward-shift deletion, keyed by the trace
// ID, in pointer-free slots. With the buffer full, every held trace is inserted,
// decided in place and deleted again while ~125,000 others stay; a Go map of the same
// entries spent most of the tail stage's remaining CPU there (probing, tombstone
// rehashes, and marking the pointers of its entries at every GC). Here a lookup costs
// one hash and, at under half full, mostly one cache line; deletion leaves no
// tombstones; and the slots hold no pointers (a pending trace is an index into pts).
type traceTable struct {
	slots []traceSlot // a power of two; the zero trace ID marks an empty slot
	n     int
	pts   []*pendingTrace // slot.pt-1 indexes this
	free  []uint32        // free indexes of pts
}

type traceSlot struct {
	tid pcommon.TraceID
	pt  uint32 // 0: decided, by pol; else the pending trace pts[pt-1]
	pol tailPolicy
}

// traceEntry is a trace the stage knows: pending (pt) or decided (pol).
type traceEntry struct {
	pt  *pendingTrace // nil once decided
	pol tailPolicy
}

const (
	minTraceSlots = 1024
	// maxPresizedSlots caps what newTraceTable allocates up front (6 MiB of slots).
	maxPresizedSlots = 1 << 18
)

// newTraceTable returns a table sized for n entries, the most the stage keeps (pending
// traces and remembered decisions), which it reaches within seconds under load:
// growing there rehashes every entry at each doubling. Past maxPresizedSlots it grows
// as it fills.
func newTraceTable(n int) traceTable {
	size := minTraceSlots
	for size < 2*n && size < maxPresizedSlots {
		size *= 2
	}
	return traceTable{slots: make([]traceSlot, size)}
}

func (t *traceTable) home(tid pcommon.TraceID) int {
	lo, hi := binary.LittleEndian.Uint64(tid[8:]), binary.LittleEndian.Uint64(tid[:8])
	h := (lo ^ bits.RotateLeft64(hi, 29)) * 0x9e3779b97f4a7c15
	return int(h >> (64 - bits.TrailingZeros(uint(len(t.slots)))))
}

// find returns the slot of tid, or the empty slot where it would go.
func (t *traceTable) find(tid pcommon.TraceID) (int, bool) {
	mask := len(t.slots) - 1
	for i := t.home(tid); ; i = (i + 1) & mask {
		switch t.slots[i].tid {
		case tid:
			return i, true
		case pcommon.TraceID{}:
			return i, false
		}
	}
}

// touch reads the home slot of each of tids and returns a value made of what it read
// (for the caller to keep, so that the reads are not optimized away). The slots of a
// full table (2^18 of them, 6 MiB) are cache misses; read one after another by lookups
// that each wait for the last, they were the sampler's largest cost at 10% sampling
// (find: 1.8% of spoor's CPU in the share benchmark's profiles). Independent reads in
// a loop overlap instead, and the lookups that follow find the slots in the cache
// (find and touch together: 1.0%).
func (t *traceTable) touch(tids []pcommon.TraceID) uint64 {
	var x uint64
	for _, tid := range tids {
		x += uint64(t.slots[t.home(tid)].tid[0])
	}
	return x
}

// get returns what the table knows of tid.
func (t *traceTable) get(tid pcommon.TraceID) (traceEntry, bool) {
	if t.n == 0 || tid.IsEmpty() {
		return traceEntry{}, false
	}
	i, ok := t.find(tid)
	if !ok {
		return traceEntry{}, false
	}
	s := &t.slots[i]
	if s.pt != 0 {
		return traceEntry{pt: t.pts[s.pt-1]}, true
	}
	return traceEntry{pol: s.pol}, true
}

// slot returns tid's slot, inserting an empty entry for it if it has none.
func (t *traceTable) slot(tid pcommon.TraceID) *traceSlot {
	if (t.n+1)*2 > len(t.slots) {
		t.grow()
	}
	i, ok := t.find(tid)
	if !ok {
		t.slots[i] = traceSlot{tid: tid}
		t.n++
	}
	return &t.slots[i]
}

// setPending records tid as pending with pt.
func (t *traceTable) setPending(tid pcommon.TraceID, pt *pendingTrace) {
	if tid.IsEmpty() {
		panic("BUG: the tail stage holds no span without a trace ID")
	}
	s := t.slot(tid)
	t.release(s)
	var idx uint32
	if n := len(t.free); n > 0 {
		idx = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		t.pts = append(t.pts, nil)
		idx = uint32(len(t.pts) - 1)
	}
	t.pts[idx] = pt
	s.pt = idx + 1
}

// setDecided records tid as decided by pol, in place of its pending entry if it has one.
func (t *traceTable) setDecided(tid pcommon.TraceID, pol tailPolicy) {
	if tid.IsEmpty() {
		panic("BUG: the tail stage decides no trace without a trace ID")
	}
	s := t.slot(tid)
	t.release(s)
	s.pol = pol
}

// release frees the pending trace index of s, if it has one.
func (t *traceTable) release(s *traceSlot) {
	if s.pt != 0 {
		t.pts[s.pt-1] = nil
		t.free = append(t.free, s.pt-1)
		s.pt = 0
	}
}

// del forgets tid.
func (t *traceTable) del(tid pcommon.TraceID) {
	if t.n == 0 || tid.IsEmpty() {
		return
	}
	i, ok := t.find(tid)
	if !ok {
		return
	}
	t.release(&t.slots[i])
	// Backward shift: move later entries of the probe run into the hole unless their
	// home lies cyclically after it, so that no lookup ever stops short.
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; !t.slots[j].tid.IsEmpty(); j = (j + 1) & mask {
		k := t.home(t.slots[j].tid)
		if i <= j && i < k && k <= j || i > j && (i < k || k <= j) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = traceSlot{}
	t.n--
}

func (t *traceTable) grow() {
	old := t.slots
	t.slots = make([]traceSlot, max(minTraceSlots, 2*len(old)))
	for _, s := range old {
		if !s.tid.IsEmpty() {
			i, _ := t.find(s.tid)
			t.slots[i] = s
		}
	}
}

func (t *traceTable) len() int { return t.n }

// each calls f for every known trace.
func (t *traceTable) each(f func(tid pcommon.TraceID, e traceEntry)) {
	for _, s := range t.slots {
		if s.tid.IsEmpty() {
			continue
		}
		e := traceEntry{pol: s.pol}
		if s.pt != 0 {
			e = traceEntry{pt: t.pts[s.pt-1]}
		}
		f(s.tid, e)
	}
}
