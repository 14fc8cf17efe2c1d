//go:build !linux

package ingest

import "runtime/metrics"

// anonMemoryBytes is the memory the Go runtime has mapped and not given back: where
// /proc is missing, the closest measure of the process's anonymous memory.
func anonMemoryBytes() (int64, bool) {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64()), true
}
