package storageext

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
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

// TestWriteGuardFailures: a failed write is reported by Health until a write succeeds;
// a caller giving up (context canceled) is not a disk failure.
func TestWriteGuardFailures(t *testing.T) {
	g := newWriteGuard(t.TempDir(), 1<<20)
	g.Done(context.Canceled)
	if h := g.Health(); h != "" {
		t.Errorf("Health after a canceled write = %q, want healthy", h)
	}
	g.Done(errors.New("write 000001.vlog: input/output error"))
	if h := g.Health(); !strings.Contains(h, "input/output error") {
		t.Errorf("Health after an I/O error = %q", h)
	}
	g.Done(nil)
	if h := g.Health(); h != "" {
		t.Errorf("Health after a good write = %q, want healthy", h)
	}
	if g.failures.Load() != 1 {
		t.Errorf("failures = %d, want 1", g.failures.Load())
	}
}

// TestWriteGuardStops: the guard's measuring goroutine ends with shutdown.
func TestWriteGuardStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	g := newWriteGuard(t.TempDir(), 1<<20)
	g.start(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	g.shutdown()
	g.shutdown()
}
