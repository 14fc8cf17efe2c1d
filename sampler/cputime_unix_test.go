//go:build unix

package sampler

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) the whole process has used: unlike a
// benchmark's wall time it counts the garbage collector's background workers too.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
