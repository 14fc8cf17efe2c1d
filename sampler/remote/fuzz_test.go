package remote

import (
	"bytes"
	"os"
	"testing"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
)

// Any file either is refused or yields strategies whose every response the proto's JSON
// decoder reads, with rates in range.
func FuzzParseStrategies(f *testing.F) {
	fixture, err := os.ReadFile("testdata/strategies.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"default_strategy":{"type":"ratelimiting","param":32767}}`))
	f.Fuzz(func(t *testing.T, file []byte) {
		s, err := parseStrategies(bytes.NewReader(file), 50)
		if err != nil {
			return
		}
		all := []strategy{s.fallback}
		for _, st := range s.byService {
			all = append(all, st)
		}
		for _, st := range all {
			for _, numeric := range []bool{false, true} {
				var resp api_v2.SamplingStrategyResponse
				if err := jsonpb.Unmarshal(bytes.NewReader(st.encode(numeric)), &resp); err != nil {
					t.Fatalf("served body does not decode: %v", err)
				}
				if r := resp.ProbabilisticSampling.GetSamplingRate(); r < 0 || r > 1 {
					t.Fatalf("sampling rate %v out of range", r)
				}
				if r := resp.RateLimitingSampling.GetMaxTracesPerSecond(); r < 0 || r > maxTracesPerSecond {
					t.Fatalf("max traces %v out of range", r)
				}
				for _, op := range resp.OperationSampling.GetPerOperationStrategies() {
					if r := op.ProbabilisticSampling.GetSamplingRate(); r < 0 || r > 1 {
						t.Fatalf("operation %q rate %v out of range", op.Operation, r)
					}
				}
			}
		}
	})
}
