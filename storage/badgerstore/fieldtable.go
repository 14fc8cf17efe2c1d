package badgerstore

// fieldTable maps a (field, bucket) to an int32 with open addressing. Field hashes are
// xxhash values already, so the table uses them as they are instead of hashing the
// 16-byte key again (Go's map spent more time hashing than probing on the write path).
type fieldTable struct {
	keys []fieldKey
	vals []int32 // -1 marks an empty slot
	n    int
	// used lists the occupied slots while they are few (overflow once there were too
	// many to list), so that reset clears only them: the write path resets its
	// batch's group table once per batch, and a telemetrygen-shaped batch fills a
	// dozen of its slots. (When the table was reset once per trace, clearing all of it
	// was a tenth of planFields.)
	used     []int32
	overflow bool
}

func slotOf(k fieldKey, mask int) int {
	return int((k.hash^uint64(k.bucket)*0x9E3779B97F4A7C15)>>7) & mask
}

// touch reads the home slots of posts' fields and returns a value made of what it read
// (for the caller to keep, so that the reads are not optimized away).
func (t *fieldTable) touch(posts []postingOut) uint64 {
	if len(t.keys) == 0 {
		return 0
	}
	mask := len(t.keys) - 1
	var x uint64
	for i := range posts {
		j := slotOf(fieldKey{hash: posts[i].field, bucket: posts[i].bucket}, mask)
		x += uint64(t.vals[j]) + t.keys[j].hash
	}
	return x
}

func (t *fieldTable) get(k fieldKey) (int32, bool) {
	if len(t.keys) == 0 {
		return 0, false
	}
	mask := len(t.keys) - 1
	for i := slotOf(k, mask); ; i = (i + 1) & mask {
		if t.vals[i] < 0 {
			return 0, false
		}
		if t.keys[i] == k {
			return t.vals[i], true
		}
	}
}

// put sets k to v (v ≥ 0).
func (t *fieldTable) put(k fieldKey, v int32) {
	if 2*(t.n+1) > len(t.keys) {
		t.grow()
	}
	mask := len(t.keys) - 1
	for i := slotOf(k, mask); ; i = (i + 1) & mask {
		if t.vals[i] < 0 {
			t.keys[i], t.vals[i] = k, v
			t.n++
			if !t.overflow {
				if len(t.used) < len(t.vals)/8 {
					t.used = append(t.used, int32(i))
				} else {
					t.overflow = true
				}
			}
			return
		}
		if t.keys[i] == k {
			t.vals[i] = v
			return
		}
	}
}

// size makes an empty table that holds n keys without growing.
func (t *fieldTable) size(n int) {
	size := 1024
	for size < 2*(n+1) {
		size *= 2
	}
	t.keys, t.vals, t.n, t.used, t.overflow = make([]fieldKey, size), make([]int32, size), 0, nil, false
	for i := range t.vals {
		t.vals[i] = -1
	}
}

func (t *fieldTable) grow() {
	size := max(1024, 2*len(t.keys))
	old := *t
	t.keys, t.vals, t.n, t.used, t.overflow = make([]fieldKey, size), make([]int32, size), 0, old.used[:0], false
	for i := range t.vals {
		t.vals[i] = -1
	}
	for i, v := range old.vals {
		if v >= 0 {
			t.put(old.keys[i], v)
		}
	}
}

// all calls fn for every key and value.
func (t *fieldTable) all(fn func(fieldKey, int32)) {
	for i, v := range t.vals {
		if v >= 0 {
			fn(t.keys[i], v)
		}
	}
}

// reset empties the table, keeping its memory.
func (t *fieldTable) reset() {
	if t.n == 0 {
		return
	}
	if t.overflow {
		for i := range t.vals {
			t.vals[i] = -1
		}
	} else {
		for _, i := range t.used {
			t.vals[i] = -1
		}
	}
	t.n, t.used, t.overflow = 0, t.used[:0], false
}
