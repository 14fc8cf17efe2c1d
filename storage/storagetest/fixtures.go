package storagetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// JaegerFixtures is Jaeger's storage conformance data, moved to recent times, for
// running the same cases against other surfaces than the store (the built binary's
// Jaeger API, say).
type JaegerFixtures struct {
	// Traces are the 32 fixture traces by file name (without .json), shifted.
	Traces map[string]ptrace.Traces
	// Cases are the 25 queries, shifted, with the trace IDs (32 hex digits) each must
	// return exactly.
	Cases []JaegerCase
}

// JaegerCase is one query of queries.json.
type JaegerCase struct {
	Caption string
	Query   storage.TraceQuery
	Want    []string
}

// LoadJaegerFixtures reads the fixtures and queries and shifts them so that the
// fixtures' reference time is about an hour ago.
func LoadJaegerFixtures(t *testing.T) *JaegerFixtures {
	t.Helper()
	dir := FixturesDir(t)
	offset := time.Now().Add(-time.Hour).Truncate(time.Minute).Sub(jaegerBase)
	files, err := filepath.Glob(filepath.Join(dir, "traces", "*.json"))
	if err != nil {
		t.Fatalf("list fixtures: %v", err)
	}
	if len(files) != 32 {
		t.Fatalf("found %d fixture traces in %s, want 32", len(files), dir)
	}
	fx := &JaegerFixtures{Traces: map[string]ptrace.Traces{}}
	ids := map[string][]string{}
	var u ptrace.JSONUnmarshaler
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		td, err := u.UnmarshalTraces(b)
		if err != nil {
			t.Fatalf("decode fixture %s: %v", f, err)
		}
		shiftTraces(td, offset)
		name := filepath.Base(f)
		name = name[:len(name)-len(".json")]
		fx.Traces[name] = td
		ids[name] = traceIDsOf(td)
	}
	b, err := os.ReadFile(filepath.Join(dir, "queries.json"))
	if err != nil {
		t.Fatalf("read queries: %v", err)
	}
	var queries []jaegerQuery
	if err := json.Unmarshal(b, &queries); err != nil {
		t.Fatalf("decode queries: %v", err)
	}
	if len(queries) != 25 {
		t.Fatalf("found %d queries, want 25", len(queries))
	}
	for _, jq := range queries {
		c := JaegerCase{Caption: jq.Caption, Query: storage.TraceQuery{
			ServiceName:   jq.Query.ServiceName,
			OperationName: jq.Query.OperationName,
			StartTimeMin:  jq.Query.StartTimeMin.Add(offset),
			StartTimeMax:  jq.Query.StartTimeMax.Add(offset),
			DurationMin:   jq.Query.DurationMin,
			DurationMax:   jq.Query.DurationMax,
			Limit:         jq.Query.NumTraces,
		}}
		if len(jq.Query.Tags) > 0 {
			c.Query.Attributes = map[string]string{}
			for k, v := range jq.Query.Tags {
				str, err := tagString(v)
				if err != nil {
					t.Fatalf("%s: tag %s: %v", jq.Caption, k, err)
				}
				c.Query.Attributes[k] = str
			}
		}
		for _, f := range jq.ExpectedFixtures {
			want, ok := ids[f]
			if !ok {
				t.Fatalf("%s: expected fixture %q not among the traces", jq.Caption, f)
			}
			c.Want = append(c.Want, want...)
		}
		fx.Cases = append(fx.Cases, c)
	}
	return fx
}
