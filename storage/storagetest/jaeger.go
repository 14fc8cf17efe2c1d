package storagetest

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// jaegerBase is the fixtures' reference time; the suite moves it to about an hour ago.
var jaegerBase = time.Date(2017, 1, 26, 16, 46, 31, 0, time.UTC)

type jaegerQuery struct {
	Caption string
	Query   struct {
		ServiceName   string
		OperationName string
		Tags          map[string]any
		StartTimeMin  time.Time
		StartTimeMax  time.Time
		DurationMin   time.Duration
		DurationMax   time.Duration
		NumTraces     int
	}
	ExpectedFixtures []string
}

// FixturesDir finds the Jaeger fixtures: $SPOOR_CONFORMANCE_DIR/jaeger if set, else the
// copy in this package's testdata (copied unchanged from ../shared/conformance/jaeger,
// with its README naming the source and licence), so a clean clone tests with them.
func FixturesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(packageDir(t), "testdata", "jaeger")
	if d := os.Getenv("SPOOR_CONFORMANCE_DIR"); d != "" {
		dir = filepath.Join(d, "jaeger")
	}
	if _, err := os.Stat(filepath.Join(dir, "queries.json")); err != nil {
		t.Fatalf("Jaeger conformance fixtures missing: %v", err)
	}
	return dir
}

// packageDir is this source file's directory, wherever the test runs from.
func packageDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the storagetest package's source")
	}
	return filepath.Dir(file)
}

// shiftTraces moves every timestamp of td by d.
func shiftTraces(td ptrace.Traces, d time.Duration) {
	shift := func(ts pcommon.Timestamp) pcommon.Timestamp {
		if ts == 0 {
			return 0
		}
		return pcommon.NewTimestampFromTime(ts.AsTime().Add(d))
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				sp.SetStartTimestamp(shift(sp.StartTimestamp()))
				sp.SetEndTimestamp(shift(sp.EndTimestamp()))
				evs := sp.Events()
				for e := 0; e < evs.Len(); e++ {
					evs.At(e).SetTimestamp(shift(evs.At(e).Timestamp()))
				}
			}
		}
	}
}

// traceIDsOf returns the trace IDs of td's spans (not of its links), as hex.
func traceIDsOf(td ptrace.Traces) []string {
	var out []string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				id := spans.At(k).TraceID()
				s := hex.EncodeToString(id[:])
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// tagString writes a JSON tag value the way pcommon.Value.AsString prints the
// attribute it stands for.
func tagString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		return "", fmt.Errorf("unsupported tag value %v (%T)", v, v)
	}
}

func testJaegerFixtures(t *testing.T, open Opener) {
	fx := LoadJaegerFixtures(t)
	s := openFresh(t, open)
	for name, td := range fx.Traces {
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatalf("write fixture %s: %v", name, err)
		}
	}
	for _, c := range fx.Cases {
		t.Run(c.Caption, func(t *testing.T) {
			q := c.Query
			want := slices.Clone(c.Want)
			ids, err := s.FindTraceIDs(context.Background(), q)
			if err != nil {
				t.Fatalf("FindTraceIDs: %v", err)
			}
			got := idStrings(ids)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("FindTraceIDs(%+v)\n got %v\nwant %v", q, got, want)
			}
			checkEstimate(t, s, q, len(want))
			traces, err := s.FindTraces(context.Background(), q)
			if err != nil {
				t.Fatalf("FindTraces: %v", err)
			}
			if len(traces) != len(ids) {
				t.Fatalf("FindTraces returned %d traces, FindTraceIDs %d", len(traces), len(ids))
			}
			for i, td := range traces {
				if tids := traceIDsOf(td); len(tids) != 1 || tids[0] != idStrings(ids[i : i+1])[0] {
					t.Fatalf("FindTraces[%d] holds traces %v, want %s in FindTraceIDs order", i, tids, idStrings(ids[i:i+1]))
				}
			}
		})
	}
}

// checkEstimate holds a store that estimates totals (storage.TraceCounter) to its
// contract: an exact count equals the matches, an inexact one is not below them, and a
// query on one field (the service, in a window) is counted exactly.
func checkEstimate(t *testing.T, s Store, q storage.TraceQuery, matches int) {
	t.Helper()
	tc, ok := s.(storage.TraceCounter)
	if !ok {
		return
	}
	est, err := tc.EstimateTraces(context.Background(), q)
	if err != nil {
		t.Fatalf("EstimateTraces: %v", err)
	}
	single := q.OperationName == "" && len(q.Attributes) == 0 && len(q.AttributeFilters) == 0 && q.DurationMin == 0 &&
		q.DurationMax == 0 && !q.ErrorsOnly && q.Status == storage.AnyStatus && q.TraceDurationMin == 0 && q.TraceDurationMax == 0 && !q.TraceErrorsOnly
	switch {
	case est.Exact && est.Count != int64(matches):
		t.Fatalf("EstimateTraces(%+v) = %d (exact), but %d traces match", q, est.Count, matches)
	case est.Count < int64(matches):
		t.Fatalf("EstimateTraces(%+v) = %d, below the %d traces that match", q, est.Count, matches)
	case single && !est.Exact:
		t.Fatalf("EstimateTraces(%+v) = %d, not exact for a query on one field", q, est.Count)
	}
}
