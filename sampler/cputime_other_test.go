//go:build !unix

package sampler

import "time"

// processCPU is not measured here: the CPU benchmark reports -1.
func processCPU() time.Duration { return -1 }
