package main

import (
	"math/rand/v2"

	"github.com/spoortrace/spoor/storage"
)

// extraSearches are the searches that need the store's own query features beyond
// Jaeger's.
func extraSearches(w *workload, rng *rand.Rand) []struct {
	name string
	q    func() storage.TraceQuery
} {
	return nil
}
