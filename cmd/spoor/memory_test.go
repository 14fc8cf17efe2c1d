package main

import (
	"runtime/debug"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)

	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("SPOOR_MEMORY_LIMIT_MIB", "1000")
	if err := applyMemoryLimit(); err != nil {
		t.Fatal(err)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(400<<20); got != want {
		t.Errorf("soft memory limit = %d, want %d (40%% of 1000 MiB)", got, want)
	}

	t.Setenv("SPOOR_MEMORY_LIMIT_MIB", "lots")
	if err := applyMemoryLimit(); err == nil {
		t.Error("SPOOR_MEMORY_LIMIT_MIB=lots was accepted")
	}

	t.Setenv("SPOOR_MEMORY_LIMIT_MIB", "")
	n, err := memoryLimitMiB()
	if err != nil || n < 512 || n > 2048 {
		t.Errorf("default memory limit = %d MiB (%v), want within [512, 2048]", n, err)
	}
}
