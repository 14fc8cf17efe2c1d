package badgerstore

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

func dirSizes(dir string) (lsm, vlog int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path != dir {
			return nil
		}
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by a compaction while we walked
		}
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".sst"):
			lsm += onDisk(info)
		case strings.HasSuffix(path, ".vlog"):
			vlog += onDisk(info)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("size of trace store %q: %w", dir, err)
	}
	return lsm, vlog, nil
}
