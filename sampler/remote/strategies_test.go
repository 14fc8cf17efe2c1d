package remote

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
)

// The exact bodies served for testdata/strategies.json, by service.
var fixtureBodies = map[string]string{
	// Not in the file: the default strategy with its operations.
	"unknown": `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.5},"operationSampling":{"defaultSamplingProbability":0.5,"perOperationStrategies":[{"operation":"op0","probabilisticSampling":{"samplingRate":0.2}},{"operation":"/health","probabilisticSampling":{"samplingRate":0}}]}}`,
	// Own operations first and winning over the default's op0, then the default's others.
	"foo": `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.8},"operationSampling":{"defaultSamplingProbability":0.8,"perOperationStrategies":[{"operation":"op0","probabilisticSampling":{"samplingRate":0.6}},{"operation":"op1","probabilisticSampling":{"samplingRate":0.1}},{"operation":"/health","probabilisticSampling":{"samplingRate":0}}]}}`,
	// No operations of its own: the default's, at the service's rate.
	"plain": `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.3},"operationSampling":{"defaultSamplingProbability":0.3,"perOperationStrategies":[{"operation":"op0","probabilisticSampling":{"samplingRate":0.2}},{"operation":"/health","probabilisticSampling":{"samplingRate":0}}]}}`,
	"bar":   `{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":5}}`,
	// Rate limited with operations: Jaeger's 0.001 for operations not listed.
	"baz":        `{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":7},"operationSampling":{"defaultSamplingProbability":0.001,"perOperationStrategies":[{"operation":"op2","probabilisticSampling":{"samplingRate":0.4}},{"operation":"op0","probabilisticSampling":{"samplingRate":0.2}},{"operation":"/health","probabilisticSampling":{"samplingRate":0}}]}}`,
	"guaranteed": `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.01},"operationSampling":{"defaultSamplingProbability":0.01,"defaultLowerBoundTracesPerSecond":2,"perOperationStrategies":[{"operation":"op3","probabilisticSampling":{"samplingRate":1}},{"operation":"op0","probabilisticSampling":{"samplingRate":0.2}},{"operation":"/health","probabilisticSampling":{"samplingRate":0}}]}}`,
}

func loadFixture(t *testing.T) *strategies {
	t.Helper()
	f, err := os.Open("testdata/strategies.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := parseStrategies(f, 100)
	if err != nil {
		t.Fatalf("parse fixture: %v", err)
	}
	return s
}

func TestEncodeFixture(t *testing.T) {
	s := loadFixture(t)
	for service, want := range fixtureBodies {
		st, _ := s.lookup(service)
		if got := string(st.encode(false)); got != want {
			t.Errorf("service %s:\n got %s\nwant %s", service, got, want)
		}
	}
}

// The shapes REFERENCE §1.4 shows, byte for byte.
func TestEncodeReferenceShapes(t *testing.T) {
	cases := []struct {
		st   strategy
		want string
	}{
		{strategy{Type: probabilistic, SamplingRate: 0.8}, `{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.8}}`},
		{strategy{Type: rateLimiting, MaxTracesPerSecond: 42}, `{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":42}}`},
		{strategy{Type: probabilistic, SamplingRate: 1, Operations: &operationSampling{
			DefaultSamplingProbability: 1, PerOperation: []operationStrategy{{Operation: "/health", SamplingRate: 0.1}}}},
			`{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":1},"operationSampling":{"defaultSamplingProbability":1,"perOperationStrategies":[{"operation":"/health","probabilisticSampling":{"samplingRate":0.1}}]}}`},
	}
	for _, c := range cases {
		if got := string(c.st.encode(false)); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
	if got, want := string(cases[1].st.encode(true)), `{"strategyType":1,"rateLimitingSampling":{"maxTracesPerSecond":42}}`; got != want {
		t.Errorf("numeric: got %s, want %s", got, want)
	}
	if got, want := string(cases[0].st.encode(true)), `{"strategyType":0,"probabilisticSampling":{"samplingRate":0.8}}`; got != want {
		t.Errorf("numeric: got %s, want %s", got, want)
	}
}

// Both encodings decode, with the proto's own JSON decoder (the one the OTel Go contrib
// sampler uses), to the same SamplingStrategyResponse.
func TestEncodeDecodesAsProto(t *testing.T) {
	s := loadFixture(t)
	for service := range fixtureBodies {
		st, _ := s.lookup(service)
		var byName, byNumber api_v2.SamplingStrategyResponse
		if err := jsonpb.Unmarshal(bytes.NewReader(st.encode(false)), &byName); err != nil {
			t.Fatalf("%s: decode string enum: %v", service, err)
		}
		if err := jsonpb.Unmarshal(bytes.NewReader(st.encode(true)), &byNumber); err != nil {
			t.Fatalf("%s: decode numeric enum: %v", service, err)
		}
		if byName.String() != byNumber.String() {
			t.Errorf("%s: string and numeric encodings differ: %v vs %v", service, &byName, &byNumber)
		}
		if int32(byName.StrategyType) != int32(st.Type) {
			t.Errorf("%s: strategy type %v, want %d", service, byName.StrategyType, st.Type)
		}
		if st.Type == rateLimiting && byName.RateLimitingSampling.GetMaxTracesPerSecond() != st.MaxTracesPerSecond {
			t.Errorf("%s: max traces %d, want %d", service, byName.RateLimitingSampling.GetMaxTracesPerSecond(), st.MaxTracesPerSecond)
		}
		if st.Operations != nil && len(byName.OperationSampling.GetPerOperationStrategies()) != len(st.Operations.PerOperation) {
			t.Errorf("%s: %d operations decoded, want %d", service, len(byName.OperationSampling.GetPerOperationStrategies()), len(st.Operations.PerOperation))
		}
	}
}

func TestParseMinimalAndDefaults(t *testing.T) {
	// No default_strategy: services not named get the configured percentage.
	s, err := parseStrategies(strings.NewReader(`{"service_strategies":[{"service":"a","type":"ratelimiting","param":32767}]}`), 25)
	if err != nil {
		t.Fatal(err)
	}
	if st, named := s.lookup("b"); named || st.Type != probabilistic || st.SamplingRate != 0.25 || st.Operations != nil {
		t.Errorf("unnamed service got %+v (named %v), want probabilistic 0.25", st, named)
	}
	if st, named := s.lookup("a"); !named || st.Type != rateLimiting || st.MaxTracesPerSecond != 32767 {
		t.Errorf("service a got %+v, want ratelimiting 32767", st)
	}
	// An empty object is a valid file.
	if _, err := parseStrategies(strings.NewReader(" {} \n"), 100); err != nil {
		t.Errorf("empty object: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"empty file", ``, "decode strategies JSON"},
		{"not JSON", `{"default_strategy":`, "decode strategies JSON"},
		{"trailing data", `{} {}`, "data after the JSON object"},
		{"unknown key", `{"default_strategy":{"type":"probabilistic","parm":0.5}}`, `unknown field "parm"`},
		{"param as string", `{"default_strategy":{"type":"probabilistic","param":"0.5"}}`, "decode strategies JSON"},
		{"bad type", `{"default_strategy":{"type":"adaptive","param":0.5}}`, `default_strategy: type must be "probabilistic" or "ratelimiting", got "adaptive"`},
		{"missing param", `{"default_strategy":{"type":"probabilistic"}}`, "default_strategy: param must be set"},
		{"probability above 1", `{"service_strategies":[{"service":"s","type":"probabilistic","param":1.5}]}`, `service_strategies[0] (service "s"): probabilistic param is a probability between 0 and 1, got 1.5`},
		{"negative probability", `{"default_strategy":{"type":"probabilistic","param":-0.1}}`, "between 0 and 1"},
		{"rate above int16", `{"service_strategies":[{"service":"s","type":"ratelimiting","param":32768}]}`, "ratelimiting param is whole traces per second between 0 and 32767 (Thrift's int16), got 32768"},
		{"negative rate", `{"default_strategy":{"type":"ratelimiting","param":-1}}`, "between 0 and 32767"},
		{"fractional rate", `{"default_strategy":{"type":"ratelimiting","param":2.5}}`, "whole traces per second"},
		{"service missing", `{"service_strategies":[{"type":"probabilistic","param":1}]}`, "service_strategies[0]: service must be set"},
		{"duplicate service", `{"service_strategies":[{"service":"s","type":"probabilistic","param":1},{"service":"s","type":"probabilistic","param":0}]}`, `service_strategies[1]: service "s" appears twice`},
		{"service on default", `{"default_strategy":{"service":"s","type":"probabilistic","param":1}}`, "default_strategy: service must not be set"},
		{"operation missing", `{"default_strategy":{"type":"probabilistic","param":1,"operation_strategies":[{"type":"probabilistic","param":1}]}}`, "operation_strategies[0]: operation must be set"},
		{"duplicate operation", `{"default_strategy":{"type":"probabilistic","param":1,"operation_strategies":[{"operation":"o","type":"probabilistic","param":1},{"operation":"o","type":"probabilistic","param":1}]}}`, `operation_strategies[1]: operation "o" appears twice`},
		{"rate-limited operation", `{"service_strategies":[{"service":"s","type":"probabilistic","param":1,"operation_strategies":[{"operation":"o","type":"ratelimiting","param":1}]}]}`, `service_strategies[0] (service "s"): operation_strategies[0] (operation "o"): type must be "probabilistic"`},
		{"operation probability out of range", `{"default_strategy":{"type":"probabilistic","param":1,"operation_strategies":[{"operation":"o","type":"probabilistic","param":2}]}}`, `operation_strategies[0] (operation "o"): probabilistic param`},
		{"lower bound without operations", `{"default_strategy":{"type":"probabilistic","param":1,"default_lower_bound_traces_per_second":1}}`, "needs operation_strategies"},
		{"negative lower bound", `{"default_strategy":{"type":"probabilistic","param":1,"default_lower_bound_traces_per_second":-1,"operation_strategies":[{"operation":"o","type":"probabilistic","param":1}]}}`, "default_lower_bound_traces_per_second must be between 0 and 32767"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseStrategies(strings.NewReader(c.file), 100)
			if err == nil {
				t.Fatalf("parsed without error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

// Validate reads and checks the strategies file: the collector's validate command and
// its start-up call it, so a bad file is refused with the file's name and the reason, and
// for JSON errors the line and column of the mistake.
func TestValidateChecksStrategiesFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, body string
		want       string // "" for valid
	}{
		{"valid", `{"default_strategy":{"type":"probabilistic","param":0.5}}`, ""},
		{"fixture", "", ""},
		{"syntax", "{\n  \"default_strategy\": {\n    \"type\": \"probabilistic\",\n    \"param\": 0.5,\n  }\n}", "line 5, column 3: invalid character '}'"},
		{"type", "{\"service_strategies\": [\n  {\"service\": \"a\", \"type\": \"probabilistic\", \"param\": \"0.5\"}\n]}", "line 2, column 58: json: cannot unmarshal string"},
		{"truncated", "{\"default_strategy\":\n{\"type\":\"probabilistic\"", "line 2, column 24: unexpected EOF"},
		{"trailing", "{}\n\n  {}", "line 3, column 3: data after the JSON object"},
		{"unknown key", `{"default_strategy":{"type":"probabilistic","param":0.5,"rate":1}}`, `unknown field "rate"`},
		{"range", `{"service_strategies":[{"service":"a","type":"probabilistic","param":2}]}`, `service_strategies[0] (service "a"): probabilistic param is a probability between 0 and 1, got 2`},
		{"missing", "-", "no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".json")
			switch c.body {
			case "":
				path = "testdata/strategies.json"
			case "-":
			default:
				if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := createDefaultConfig().(*Config)
			cfg.StrategiesFile = path
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("validate: %v, want an error naming %s and saying %q", err, path, c.want)
			}
		})
	}
}
