//go:build !unix

package storageext

import (
	"io/fs"
	"math"
)

// freeBytes is unknown here: the guard never refuses for space.
func freeBytes(string) (int64, error) { return math.MaxInt64 / 4, nil }

// allocatedBytes takes files as fully allocated.
func allocatedBytes(info fs.FileInfo) int64 { return info.Size() }
