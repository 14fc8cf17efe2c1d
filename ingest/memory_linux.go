package ingest

import (
	"bytes"
	"os"
	"strconv"
)

var pageSize = int64(os.Getpagesize())

// anonMemoryBytes is the process's resident anonymous memory (resident minus shared
// pages in /proc/self/statm): the heap, stacks and off-heap allocations, without the
// file pages that Badger's memory-mapped files bring in and the kernel can drop.
func anonMemoryBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, false
	}
	resident, err1 := strconv.ParseInt(string(f[1]), 10, 64)
	shared, err2 := strconv.ParseInt(string(f[2]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return (resident - shared) * pageSize, true
}
