package spanmatch

import (
	"math/rand/v2"
	"testing"
)

// TestTableAgainstMap puts and gets random keys (and keys crowding the last slots, so
// that probes wrap around) in tables of several sizes, checking every answer, the walk
// over all entries and reset against a Go map.
func TestTableAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for _, capacity := range []int{1, 10, 1000} {
		tb := newTable[int](capacity)
		for round := range 3 {
			want := map[uint64]int{}
			for len(want) < capacity {
				var k uint64
				switch rng.IntN(3) {
				case 0:
					k = rng.Uint64() | 1
				case 1:
					k = uint64(rng.IntN(2*capacity) + 1) // small numbers collide
				default:
					// Keys whose home is the last slot.
					for k = rng.Uint64() | 1; tb.home(k) != len(tb.slots)-1; k = rng.Uint64() | 1 {
					}
				}
				v, had := tb.put(k)
				if _, ok := want[k]; ok != had {
					t.Fatalf("cap %d round %d: put(%d) had %v, want %v", capacity, round, k, had, ok)
				}
				*v += int(k % 1000)
				want[k] += int(k % 1000)
			}
			if tb.n != len(want) {
				t.Fatalf("cap %d: n %d, want %d", capacity, tb.n, len(want))
			}
			for k, w := range want {
				if v := tb.get(k); v == nil || *v != w {
					t.Fatalf("cap %d: get(%d) = %v, want %d", capacity, k, v, w)
				}
			}
			for range 100 {
				k := rng.Uint64() | 1
				if _, ok := want[k]; !ok && tb.get(k) != nil {
					t.Fatalf("cap %d: get(%d) found a key never put", capacity, k)
				}
			}
			seen := 0
			tb.all(func(k uint64, v *int) {
				seen++
				if *v != want[k] {
					t.Fatalf("cap %d: all gave %d=%d, want %d", capacity, k, *v, want[k])
				}
			})
			if seen != len(want) {
				t.Fatalf("cap %d: all gave %d entries, want %d", capacity, seen, len(want))
			}
			tb.reset()
			if tb.n != 0 || tb.get(rng.Uint64()|1) != nil {
				t.Fatalf("cap %d: not empty after reset", capacity)
			}
			for k := range want {
				if tb.get(k) != nil {
					t.Fatalf("cap %d: %d still there after reset", capacity, k)
				}
			}
		}
	}
}
