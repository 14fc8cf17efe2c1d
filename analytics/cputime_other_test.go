//go:build !unix

package analytics

import "time"

var benchStart = time.Now()

// cpuTime falls back to wall time where getrusage is missing.
func cpuTime() time.Duration { return time.Since(benchStart) }
