package sampler

import (
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The trace table agrees with a Go map over a long random run of inserts, updates and
// deletions (a few thousand live entries, so long probe runs, wrapping around the end of
// the slots, and growth from the smallest size), with trace IDs that differ from known
// ones in one byte.
func TestTraceTableAgreesWithMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	tab := newTraceTable(0)
	ref := map[pcommon.TraceID]tailPolicy{}
	var ids []pcommon.TraceID
	newID := func() pcommon.TraceID {
		if len(ids) > 0 && rng.IntN(4) == 0 {
			// One byte off a known ID.
			id := ids[rng.IntN(len(ids))]
			id[0] ^= byte(1 + rng.IntN(255))
			return id
		}
		return randTID(rng)
	}
	for step := range 200_000 {
		switch op := rng.IntN(10); {
		case op < 4 || len(ids) == 0:
			id := newID()
			if _, ok := ref[id]; ok {
				continue
			}
			pol := tailPolicy(rng.IntN(int(numTailPolicies)))
			tab.set(id, pol)
			ref[id] = pol
			ids = append(ids, id)
		case op < 6:
			id := ids[rng.IntN(len(ids))]
			pol := tailPolicy(rng.IntN(int(numTailPolicies)))
			tab.set(id, pol)
			ref[id] = pol
		default:
			k := rng.IntN(len(ids))
			id := ids[k]
			tab.del(id)
			delete(ref, id)
			ids[k] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
		}
		if step%1000 == 0 || step > 199_000 {
			if tab.len() != len(ref) {
				t.Fatalf("step %d: %d entries, want %d", step, tab.len(), len(ref))
			}
			for id, want := range ref {
				if got, ok := tab.get(id); !ok || got != want {
					t.Fatalf("step %d: %v = %v %v, want %v", step, id, got, ok, want)
				}
			}
			n := 0
			tab.each(func(id pcommon.TraceID, pol tailPolicy) {
				n++
				if want, ok := ref[id]; !ok || want != pol {
					t.Fatalf("step %d: each gave %v %v, want %v %v", step, id, pol, want, ok)
				}
			})
			if n != len(ref) {
				t.Fatalf("step %d: each gave %d entries, want %d", step, n, len(ref))
			}
		}
		if _, ok := tab.get(newID()); ok && len(ref) == 0 {
			t.Fatal("an empty table knows a trace")
		}
	}
	if len(tab.slots) <= minTraceSlots {
		t.Fatalf("%d slots: the run never made the table grow", len(tab.slots))
	}
}
