package main

import (
	"github.com/spoortrace/spoor/internal/proc"
	"sync"
	"time"
)

// memoryWatch samples a process's resident memory, split into anonymous and
// file-backed pages: VmHWM alone counts the pages of Badger's memory-mapped files,
// which are page cache the kernel reclaims under pressure, as if they were heap.
type memoryWatch struct {
	mu         sync.Mutex
	anon, file int64
}

func watchMemory(pid int) *memoryWatch {
	w := &memoryWatch{}
	go func() {
		for {
			m, err := proc.ReadMemory(pid)
			if err != nil {
				return // the process is gone
			}
			w.mu.Lock()
			w.anon, w.file = max(w.anon, m.Anon), max(w.file, m.File)
			w.mu.Unlock()
			time.Sleep(250 * time.Millisecond)
		}
	}()
	return w
}

func (w *memoryWatch) peaks() (anon, file int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.anon, w.file
}
