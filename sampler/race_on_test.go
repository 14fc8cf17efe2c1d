//go:build race

package sampler

// raceEnabled shrinks the million-trace tests under the race detector, which slows
// pdata access twentyfold; the normal run keeps the full counts.
const raceEnabled = true
