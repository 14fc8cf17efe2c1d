// Package proc is what Spoor's benchmark and soak drivers need to run bin/spoor and
// watch it: free loopback addresses, waiting for its health check, and its resident
// memory read from /proc.
package proc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FreeAddr returns a loopback address that is free at the time of the call, on a port
// the kernel never hands out by itself.
//
// A port picked by listening on port 0 and closing comes from the ephemeral range, the
// same range the kernel draws the local ports of outgoing connections from: between the
// pick and spoor binding it, any client connection on the machine (another test's, or
// spoor's own to a port picked a moment earlier) can take it, and spoor fails to start
// with "address already in use". So FreeAddr picks at random among the ports below the
// ephemeral range (net.ipv4.ip_local_port_range), checks each by binding it, and never
// returns the same port twice in one process. Another process picking the same port in
// the same instant is what remains, one chance in about twenty thousand per pick.
func FreeAddr() (string, error) {
	pick.Lock()
	defer pick.Unlock()
	if pick.given == nil {
		pick.given = make(map[int]bool)
		pick.lo, pick.hi = pickRange(readEphemeral())
	}
	for range 2000 {
		port := pick.lo + rand.IntN(pick.hi-pick.lo)
		if pick.given[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		pick.given[port] = true
		return addr, nil
	}
	return "", fmt.Errorf("no free loopback port in [%d, %d) after 2000 tries", pick.lo, pick.hi)
}

var pick struct {
	sync.Mutex
	given  map[int]bool
	lo, hi int
}

// readEphemeral reads the kernel's ephemeral port range, Linux's default when it cannot.
func readEphemeral() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l < 1 || h < l || h > 65535 {
		return lo, hi
	}
	return l, h
}

// pickRange is the range FreeAddr draws from, outside the ephemeral range [elo, ehi]:
// from 10000 (above the ports services usually take) up to it, or above it when that
// leaves too few.
func pickRange(elo, ehi int) (lo, hi int) {
	const floor, enough = 10000, 4096
	if elo-floor >= enough {
		return floor, elo
	}
	if 65536-(ehi+1) >= enough {
		return ehi + 1, 65536
	}
	return 1024, 65536 // an ephemeral range covering nearly everything: no way around it
}

// WaitHealthy polls url until it answers 200 OK, or fails after timeout.
func WaitHealthy(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("spoor not healthy at %s after %v", url, timeout)
}

// Memory is a process's resident memory in bytes: all of it, and split into anonymous
// pages (heap, caches) and file-backed ones (memory-mapped files: page cache the kernel
// reclaims under pressure).
type Memory struct {
	RSS, Anon, File int64
}

// ReadMemory reads pid's resident memory from /proc/PID/status.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		f := strings.Fields(v)
		if !ok || len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = kb << 10
		case "RssAnon":
			m.Anon = kb << 10
		case "RssFile":
			m.File = kb << 10
		}
	}
	return m, nil
}
