//go:build !linux

package main

// totalMemoryMiB is unknown off Linux: the default limit applies.
func totalMemoryMiB() int64 { return 0 }
