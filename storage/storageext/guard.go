package storageext

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
type WriteGuard struct {
	dir     string
	minFree int64
	statfs  func(dir string) (free int64, err error)

	free       atomic.Int64 // last measured free bytes
	reserve    atomic.Int64 // bytes Badger's mapped files may still claim
	lowDisk    atomic.Bool
	lastErr    atomic.Pointer[string] // last failed write, nil after a success
	failures   atomic.Int64
	refusals   atomic.Int64
	stop       chan struct{}
	stopped    sync.WaitGroup
	stopOnce   sync.Once
	measureErr atomic.Pointer[string]
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
	free, err := g.statfs(g.dir)
	if err != nil {
		msg := err.Error()
		g.measureErr.Store(&msg)
		return // keep the last decision: a failing statfs says nothing about space
	}
	g.measureErr.Store(nil)
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

// Check returns nil when the store may take writes now, or an error wrapping
// ErrWritesRefused that says why not. n spans are counted as refused.
func (g *WriteGuard) Check(n int) error {
	if !g.lowDisk.Load() {
		return nil
	}
	g.refusals.Add(int64(n))
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
	g.failures.Add(1)
	msg := err.Error()
	g.lastErr.Store(&msg)
}

// Health says whether the store takes writes: "" when it does, else why not.
func (g *WriteGuard) Health() string {
	var parts []string
	if g.lowDisk.Load() {
		parts = append(parts, fmt.Sprintf("refusing writes: %d MiB free, %d MiB needed", g.free.Load()>>20, (g.reserve.Load()+g.minFree)>>20))
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
