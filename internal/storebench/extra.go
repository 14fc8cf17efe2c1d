package main

import (
	"math/rand/v2"
	"time"

	"github.com/spoortrace/spoor/internal/benchdata"
	"github.com/spoortrace/spoor/storage"
)

// extraSearches are the searches that need the store's own query features beyond
// Jaeger's.
func extraSearches(w *benchdata.Workload, rng *rand.Rand) []struct {
	name string
	q    func() storage.TraceQuery
} {
	return []struct {
		name string
		q    func() storage.TraceQuery
	}{
		{"service + min trace duration (40 ms, ~1 in 8)", func() storage.TraceQuery {
			return storage.TraceQuery{ServiceName: w.Services[rng.IntN(len(w.Services))], TraceDurationMin: 40 * time.Millisecond}
		}},
		{"service + errors only", func() storage.TraceQuery {
			return storage.TraceQuery{ServiceName: w.Services[rng.IntN(len(w.Services))], ErrorsOnly: true}
		}},
	}
}
