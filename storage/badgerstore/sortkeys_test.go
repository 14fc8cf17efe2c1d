package badgerstore

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// sortFieldKeys orders like a comparison sort by (bucket, hash), with one bucket or
// several, hashes that share their upper 16-bit digits, and heads small enough for the
// comparison sort itself.
func TestSortFieldKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, c := range []struct{ n, buckets int }{{0, 1}, {1, 1}, {1000, 1}, {1000, 2}, {70000, 1}, {5000, 3}, {70000, 2}} {
		keys := make([]fieldSortKey, c.n)
		for i := range keys {
			h := rng.Uint64()
			if i%3 == 1 {
				h = keys[i-1].hash ^ uint64(rng.IntN(1<<16)) // shares its upper digits
			}
			keys[i] = fieldSortKey{hash: h, bucket: 480000 + uint32(rng.IntN(c.buckets)), fid: int32(i)}
		}
		want := slices.Clone(keys)
		slices.SortFunc(want, func(a, b fieldSortKey) int {
			if x := cmp.Compare(a.bucket, b.bucket); x != 0 {
				return x
			}
			return cmp.Compare(a.hash, b.hash)
		})
		got := sortFieldKeys(keys, make([]fieldSortKey, len(keys)))
		if len(got) != len(want) {
			t.Fatalf("n %d: %d keys back", c.n, len(got))
		}
		for i := range want {
			if got[i].bucket != want[i].bucket || got[i].hash != want[i].hash {
				t.Fatalf("n %d, %d buckets: key %d is %+v, want %+v", c.n, c.buckets, i, got[i], want[i])
			}
		}
	}
}
