package sampler

import (
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The trace table agrees with a Go map over a long random run of inserts, decisions and
// deletions (a few thousand live entries, so long probe runs, wrapping around the end of
// the slots, and growth), with trace IDs that differ from known ones in one byte.
func TestTraceTableAgreesWithMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	var tab traceTable
	ref := map[pcommon.TraceID]traceEntry{}
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
			pt := &pendingTrace{tid: id}
			tab.setPending(id, pt)
			ref[id] = traceEntry{pt: pt}
			ids = append(ids, id)
		case op < 7:
			id := ids[rng.IntN(len(ids))]
			pol := tailPolicy(rng.IntN(int(numTailPolicies)))
			tab.setDecided(id, pol)
			ref[id] = traceEntry{pol: pol}
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
					t.Fatalf("step %d: %v = %+v %v, want %+v", step, id, got, ok, want)
				}
			}
			n := 0
			tab.each(func(id pcommon.TraceID, e traceEntry) {
				n++
				if ref[id] != e {
					t.Fatalf("step %d: each gave %v %+v, want %+v", step, id, e, ref[id])
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
	pending := 0
	for _, e := range ref {
		if e.pt != nil {
			pending++
		}
	}
	if used := len(tab.pts) - len(tab.free); used != pending {
		t.Fatalf("%d pending trace indexes in use, want %d", used, pending)
	}
}
