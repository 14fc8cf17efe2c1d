// Package diskusage measures what a directory really takes on disk, for the
// benchmarks: Badger preallocates its files sparsely, so file sizes overstate it.
package diskusage

import (
	"os"
	"path/filepath"
	"syscall"
)

// Of returns the bytes of disk blocks used by the files under dir.
func Of(dir string) (int64, error) {
	var total int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			} else {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}
