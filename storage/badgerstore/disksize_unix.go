//go:build unix

package badgerstore

import (
	"io/fs"
	"syscall"
)

// onDisk counts a sparse (preallocated) file by its allocated blocks.
func onDisk(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return min(info.Size(), st.Blocks*512)
	}
	return info.Size()
}
