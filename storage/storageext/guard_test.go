package storageext

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSparseReserve: the reserve is what Badger's sparse mapped files may still claim —
// their size minus their blocks — and other files do not count.
func TestSparseReserve(t *testing.T) {
	dir := t.TempDir()
	vlog, err := os.Create(filepath.Join(dir, "000001.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer vlog.Close()
	if err := vlog.Truncate(8 << 20); err != nil { // sparse: no blocks
		t.Fatal(err)
	}
	if _, err := vlog.WriteAt(make([]byte, 1<<20), 0); err != nil { // 1 MiB of blocks
		t.Fatal(err)
	}
	if err := vlog.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "000001.sst"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	got := sparseReserve(dir)
	if got < 6<<20 || got > 7<<20 {
		t.Errorf("reserve %d bytes, want about 7 MiB (8 MiB file, 1 MiB written)", got)
	}
	g := newWriteGuard(dir, 1<<20)
	g.start(10 * time.Millisecond)
	defer g.shutdown()
	defer g.shutdown()
	if err := g.Check(1); err != nil {
		t.Errorf("guard refuses on a roomy file system: %v", err)
	}
	if h := g.Health(); h != "" {
		t.Errorf("Health() = %q on a roomy file system", h)
	}
}
