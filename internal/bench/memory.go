package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
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
			anon, file, ok := rss(pid)
			if !ok {
				return // the process is gone
			}
			w.mu.Lock()
			w.anon, w.file = max(w.anon, anon), max(w.file, file)
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

func rss(pid int) (anon, file int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "RssAnon:":
			anon = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return anon, file, true
}
