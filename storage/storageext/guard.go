package storageext

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrWritesRefused wraps the error WriteGuard.Check returns while the store must not
// take writes. It is retryable: the sender keeps its spans and sends them again.
var ErrWritesRefused = errors.New("trace store is refusing writes")

// WriteGuard keeps the store from writing into a full disk, and remembers whether the
// last write failed.
//
// Badger writes its value log and the write-ahead log of its memtables through memory
// maps of sparse files (the .vlog and .mem files are created at their full size, with
// no blocks). When the file system fills, a write into such a map is not an error the
// store can return: the kernel kills the process with SIGBUS (measured on a full
// tmpfs). So the guard refuses writes before that: while the free space is less than
// the blocks those files may still claim (their size minus their allocated blocks)
// plus MinFreeBytes. Refusing is retryable, queries go on, and writes resume by
// themselves once space returns (retention, an operator deleting files, a grown
// volume): the guard measures every second.
//
// It also watches for I/O errors. Each tick its probe creates a file in the data
// directory at the size of Badger's next value-log or memtable file, writes and
// fsyncs a block of it and removes it; while that fails (EIO, a read-only
// remount, EFBIG...) writes are refused the same way, before Badger meets the fault
// while creating its next file. A store write that fails anyway refuses further
// writes until the probe passes; then the guard's recover hook (the extension's
// reopen, store.go) runs, and writes resume when it succeeds.
type WriteGuard struct {
	dir     string
	minFree int64
	statfs  func(dir string) (free int64, err error)
	// probe checks that the data directory takes a new file; nil: no probe.
	probe func() error
	// recover runs after a failed write once the directory takes writes again; true
	// means the store is fit for writes again. nil: writes resume at once.
	recover func() bool
	// onTick runs at every measurement (the extension checks for a broken store).
	onTick func()

	free       atomic.Int64 // last measured free bytes
	reserve    atomic.Int64 // bytes Badger's mapped files may still claim
	lowDisk    atomic.Bool
	lastErr    atomic.Pointer[string] // last failed write, nil after a success
	failures   atomic.Int64
	refusals   atomic.Int64
	unwritable atomic.Pointer[string] // the probe's last error, nil when it passed
	probeFails atomic.Int64
	// writeFailed is set by a failed write and cleared once the store has recovered:
	// meanwhile writes are refused.
	writeFailed atomic.Bool
	recoveries  atomic.Int64
	stop        chan struct{}
	stopped     sync.WaitGroup
	stopOnce    sync.Once
	measureErr  atomic.Pointer[string]
}

func newWriteGuard(dir string, minFree int64) *WriteGuard {
	return &WriteGuard{dir: dir, minFree: minFree, statfs: freeBytes, stop: make(chan struct{})}
}

// start measures once, then every interval until shutdown.
func (g *WriteGuard) start(interval time.Duration) {
	g.measure()
	g.stopped.Add(1)
	go func() {
		defer g.stopped.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-t.C:
				g.measure()
			}
		}
	}()
}

func (g *WriteGuard) shutdown() {
	g.stopOnce.Do(func() { close(g.stop) })
	g.stopped.Wait()
}

func (g *WriteGuard) measure() {
	if g.onTick != nil {
		g.onTick()
	}
	free, err := g.statfs(g.dir)
	if err != nil {
		msg := err.Error()
		g.measureErr.Store(&msg)
		return // keep the last decision: a failing statfs says nothing about space
	}
	g.measureErr.Store(nil)
	if g.probe != nil {
		if err := g.probe(); err != nil {
			msg := err.Error()
			g.unwritable.Store(&msg)
			g.probeFails.Add(1)
		} else {
			g.unwritable.Store(nil)
		}
	}
	defer g.maybeRecover()
	reserve := sparseReserve(g.dir)
	g.free.Store(free)
	g.reserve.Store(reserve)
	if g.lowDisk.Load() {
		// Hysteresis: resume only with MinFreeBytes to spare again, so that writes do
		// not flap at the edge.
		g.lowDisk.Store(free < reserve+2*g.minFree)
	} else {
		g.lowDisk.Store(free < reserve+g.minFree)
	}
}

// maybeRecover runs the recover hook after a failed write, once the data directory
// takes writes again.
func (g *WriteGuard) maybeRecover() {
	if !g.writeFailed.Load() || g.unwritable.Load() != nil || g.lowDisk.Load() {
		return
	}
	if g.recover != nil && !g.recover() {
		return
	}
	g.recoveries.Add(1)
	g.lastErr.Store(nil)
	g.writeFailed.Store(false)
}

// accepting reports whether the guard lets writes through.
func (g *WriteGuard) accepting() bool {
	return !g.lowDisk.Load() && g.unwritable.Load() == nil && !g.writeFailed.Load()
}

// Check returns nil when the store may take writes now, or an error wrapping
// ErrWritesRefused that says why not. n spans are counted as refused.
func (g *WriteGuard) Check(n int) error {
	if g.accepting() {
		return nil
	}
	g.refusals.Add(int64(n))
	if e := g.unwritable.Load(); e != nil {
		return fmt.Errorf("%w: the data directory does not take writes (%s); writes resume by themselves when it does",
			ErrWritesRefused, *e)
	}
	if !g.lowDisk.Load() {
		msg := "a store write failed"
		if e := g.lastErr.Load(); e != nil {
			msg += " (" + *e + ")"
		}
		return fmt.Errorf("%w: %s; writes resume by themselves once the data directory takes writes and the store has reopened",
			ErrWritesRefused, msg)
	}
	return fmt.Errorf("%w: %d MiB free on the data directory's file system, %d MiB needed (%d MiB that the store's mapped files may still claim, plus %d MiB spare); writes resume by themselves when space returns",
		ErrWritesRefused, g.free.Load()>>20, (g.reserve.Load()+g.minFree)>>20, g.reserve.Load()>>20, g.minFree>>20)
}

// Done records a write's outcome for health reporting.
func (g *WriteGuard) Done(err error) {
	if err == nil {
		if g.lastErr.Load() != nil {
			g.lastErr.Store(nil)
		}
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // the caller gave up: nothing learned about the disk
	}
	if errors.Is(err, ErrWritesRefused) && g.writeFailed.Load() {
		return // refused by a store that already failed: counted then
	}
	g.failures.Add(1)
	msg := err.Error()
	g.lastErr.Store(&msg)
	g.writeFailed.Store(true)
}

// Health says whether the store takes writes: "" when it does, else why not.
func (g *WriteGuard) Health() string {
	var parts []string
	if g.lowDisk.Load() {
		parts = append(parts, fmt.Sprintf("refusing writes: %d MiB free, %d MiB needed", g.free.Load()>>20, (g.reserve.Load()+g.minFree)>>20))
	}
	if e := g.unwritable.Load(); e != nil {
		parts = append(parts, "refusing writes: the data directory does not take writes: "+*e)
	}
	if e := g.lastErr.Load(); e != nil {
		parts = append(parts, "last write failed: "+*e)
	}
	return strings.Join(parts, "; ")
}

// sparseReserve sums, over Badger's memory-mapped files (value log, memtable WAL),
// the bytes of their size that have no blocks yet.
func sparseReserve(dir string) int64 {
	var total int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (!strings.HasSuffix(name, ".vlog") && !strings.HasSuffix(name, ".mem")) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) || err != nil {
			continue
		}
		total += max(0, info.Size()-allocatedBytes(info))
	}
	return total
}

// probeName is the file the probe writes in the data directory; Badger ignores it.
const probeName = ".spoor-write-probe"

// probeDir creates a file of size bytes in dir (sparse: Badger's next files are made
// this way), writes and fsyncs its first block, and removes it.
func probeDir(dir string, size int64) error {
	path := filepath.Join(dir, probeName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		_, err = f.WriteAt(probeBlock[:], 0)
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close(), os.Remove(path))
	return err
}

var probeBlock [4096]byte
