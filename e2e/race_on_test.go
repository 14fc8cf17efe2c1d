//go:build race

package e2e

// raceEnabled builds the binary under test with the race detector when the tests run
// with it, so that the collector wiring is checked for races under real traffic.
const raceEnabled = true
