package storagetest

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// Store is a trace store under test.
type Store interface {
	storage.Writer
	storage.Reader
	storage.Searcher
	storage.SummaryReader
	storage.DependencyReader
	Close() error
}

// Opener opens the backend's store on dir. The suite calls it with a fresh t.TempDir()
// for every case, and twice with the same dir (after Close) for the restart case.
// Backends that keep no data on disk may ignore dir, but then fail the restart case,
// as they should. The suite closes every store it opens.
type Opener func(t *testing.T, dir string) Store

// RunAll runs every conformance case against the backend.
func RunAll(t *testing.T, open Opener) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"JaegerFixtures", testJaegerFixtures},
		{"RoundTrip", testRoundTrip},
		{"Idempotent", testIdempotent},
		{"TraceInSeveralBatches", testSeveralBatches},
		{"TraceInThreeMixedBatches", testTraceInThreeBatches},
		{"SearchInSharedBatches", testSharedBatches},
		{"ServicesAndOperations", testServicesAndOperations},
		{"NewestFirstAndLimit", testNewestFirstAndLimit},
		{"TimeRangeAndDuration", testTimeRangeAndDuration},
		{"NotFound", testNotFound},
		{"Restart", testRestart},
		{"InvalidInput", testInvalidInput},
		{"Concurrency", testConcurrency},
		{"TraceDuration", testTraceDuration},
		{"ErrorsSpanAndTraceLevel", testErrors},
		{"StatusOkUnsetError", testStatus},
		{"StatusInWindowsAndRestarts", testStatusWindows},
		{"ScanLimit", testScanLimit},
		{"AttributeFiltersOrNot", testAttributeFilters},
		{"TiesAndCursor", testTiesAndCursor},
		{"PaginationWhileWriting", testPaginationWhileWriting},
		{"LateBatchService", testLateBatchService},
		{"WindowBetweenSpans", testWindowBetweenSpans},
		{"Dependencies", testDependencies},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open) })
	}
}

// openFresh opens a store on a new directory, closed when the test ends.
func openFresh(t *testing.T, open Opener) Store {
	t.Helper()
	s := open(t, t.TempDir())
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

func mustWrite(t *testing.T, w storage.Writer, td ptrace.Traces) {
	t.Helper()
	if err := w.WriteTraces(context.Background(), td); err != nil {
		t.Fatalf("WriteTraces: %v", err)
	}
}
