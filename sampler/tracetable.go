package sampler

import (
	"encoding/binary"
	"math/bits"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// traceTable is the tail stage's memory of the traces a policy kept (tailStage.kept):
// open addressing with linear probing and backward-shift deletion, keyed by the trace
// ID, in pointer-free slots. Every head-dropped span's trace is looked up in it (once
// per run of its spans), so a lookup costs one hash and, at under half full, mostly one
// cache line; deletion leaves no tombstones; and it grows as keeps accumulate, from a
// size that stays in the cache while few traces are kept.
type traceTable struct {
	slots []traceSlot // a power of two; the zero trace ID marks an empty slot
	n     int
}

type traceSlot struct {
	tid pcommon.TraceID
	pol tailPolicy
}

const (
	minTraceSlots = 1024
	// maxPresizedSlots caps what newTraceTable allocates up front (4 MiB of slots).
	maxPresizedSlots = 1 << 18
)

// newTraceTable returns a table sized for n entries; past maxPresizedSlots, or when
// more come, it grows as it fills.
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

// get returns the policy that kept tid, if the table has it.
func (t *traceTable) get(tid pcommon.TraceID) (tailPolicy, bool) {
	if t.n == 0 || tid.IsEmpty() {
		return tailNone, false
	}
	i, ok := t.find(tid)
	if !ok {
		return tailNone, false
	}
	return t.slots[i].pol, true
}

// set records that pol kept tid.
func (t *traceTable) set(tid pcommon.TraceID, pol tailPolicy) {
	if tid.IsEmpty() {
		panic("BUG: the tail stage keeps no trace without a trace ID")
	}
	if (t.n+1)*2 > len(t.slots) {
		t.grow()
	}
	i, ok := t.find(tid)
	if !ok {
		t.n++
	}
	t.slots[i] = traceSlot{tid: tid, pol: pol}
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

// each calls f for every trace in the table.
func (t *traceTable) each(f func(tid pcommon.TraceID, pol tailPolicy)) {
	for _, s := range t.slots {
		if !s.tid.IsEmpty() {
			f(s.tid, s.pol)
		}
	}
}
