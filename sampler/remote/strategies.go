package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// The strategies file, in Jaeger's format (Jaeger's
// internal/sampling/samplingstrategy/file): a default strategy and per-service
// strategies, each with optional per-operation probabilistic strategies.
type fileStrategies struct {
	DefaultStrategy   *fileServiceStrategy  `json:"default_strategy"`
	ServiceStrategies []fileServiceStrategy `json:"service_strategies"`
}

type fileServiceStrategy struct {
	Service string   `json:"service"`
	Type    string   `json:"type"`
	Param   *float64 `json:"param"`
	// DefaultLowerBound is Spoor's addition to the format: the per-operation
	// defaultLowerBoundTracesPerSecond, a guaranteed trace rate for every operation.
	DefaultLowerBound   *float64                `json:"default_lower_bound_traces_per_second"`
	OperationStrategies []fileOperationStrategy `json:"operation_strategies"`
}

type fileOperationStrategy struct {
	Operation string   `json:"operation"`
	Type      string   `json:"type"`
	Param     *float64 `json:"param"`
}

const (
	typeProbabilistic = "probabilistic"
	typeRateLimiting  = "ratelimiting"
	// maxTracesPerSecond is the largest rate limit Jaeger's Thrift conversion accepts (int16).
	maxTracesPerSecond = math.MaxInt16
	// defaultOperationProbability is what Jaeger gives operations not listed under a
	// rate-limited service that has operation strategies.
	defaultOperationProbability = 0.001
)

// maxFileBytes bounds the strategies file: thousands of services fit in far less.
const maxFileBytes = 16 << 20

// withPosition adds the line and column to the decoder's errors that carry an offset
// (syntax errors, values of the wrong type), so that a hand-edited file's author can
// find the mistake.
func withPosition(data []byte, err error) error {
	var off int64
	// The decoder's offsets count the bytes read, the offending one included.
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		off = se.Offset - 1
	} else if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		off = te.Offset - 1
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		off = int64(len(data))
	} else {
		return err
	}
	line, col := position(data, off)
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// position is the 1-based line and column of byte offset off in data.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = 1 + len(before) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

// strategyType is jaeger.api_v2.SamplingStrategyType.
type strategyType int32

const (
	probabilistic strategyType = 0
	rateLimiting  strategyType = 1
)

// strategy is one SamplingStrategyResponse.
type strategy struct {
	Type               strategyType
	SamplingRate       float64 // for probabilistic
	MaxTracesPerSecond int32   // for rateLimiting
	Operations         *operationSampling
}

type operationSampling struct {
	DefaultSamplingProbability       float64
	DefaultLowerBoundTracesPerSecond float64
	PerOperation                     []operationStrategy
}

type operationStrategy struct {
	Operation    string
	SamplingRate float64
}

// strategies are the strategies of one version of the file, ready to serve.
type strategies struct {
	byService map[string]strategy
	fallback  strategy
}

func (s *strategies) lookup(service string) (st strategy, named bool) {
	if st, ok := s.byService[service]; ok {
		return st, true
	}
	return s.fallback, false
}

// defaultStrategies are served without a file.
func defaultStrategies(percentage float64) *strategies {
	return &strategies{fallback: strategy{Type: probabilistic, SamplingRate: percentage / 100}}
}

// parseStrategies reads and checks a strategies file. Unknown keys, bad types, params
// out of range and duplicate services or operations are errors: a file that would not
// do what its author meant is refused rather than half applied.
func parseStrategies(r io.Reader, defaultPercentage float64) (*strategies, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read strategies: %w", err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("strategies file larger than %d bytes", maxFileBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileStrategies
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode strategies JSON: %w", withPosition(data, err))
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		for end < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n"), data[end]) >= 0 {
			end++
		}
		line, col := position(data, end)
		return nil, fmt.Errorf("decode strategies JSON: line %d, column %d: data after the JSON object", line, col)
	}

	out := defaultStrategies(defaultPercentage)
	if f.DefaultStrategy != nil {
		if f.DefaultStrategy.Service != "" {
			return nil, errors.New("default_strategy: service must not be set")
		}
		st, err := f.DefaultStrategy.build()
		if err != nil {
			return nil, fmt.Errorf("default_strategy: %w", err)
		}
		out.fallback = st
	}
	out.byService = make(map[string]strategy, len(f.ServiceStrategies))
	for i := range f.ServiceStrategies {
		fs := &f.ServiceStrategies[i]
		if fs.Service == "" {
			return nil, fmt.Errorf("service_strategies[%d]: service must be set", i)
		}
		if _, dup := out.byService[fs.Service]; dup {
			return nil, fmt.Errorf("service_strategies[%d]: service %q appears twice", i, fs.Service)
		}
		st, err := fs.build()
		if err != nil {
			return nil, fmt.Errorf("service_strategies[%d] (service %q): %w", i, fs.Service, err)
		}
		out.byService[fs.Service] = mergeDefaultOperations(st, out.fallback.Operations)
	}
	return out, nil
}

// mergeDefaultOperations gives a service the default strategy's operations, as Jaeger
// does: appended to its own (its own win), or, when it has none and is probabilistic,
// the default's list with the service's rate as the default probability.
func mergeDefaultOperations(st strategy, def *operationSampling) strategy {
	if def == nil {
		return st
	}
	if st.Operations == nil {
		if st.Type != probabilistic {
			return st
		}
		ops := *def
		ops.DefaultSamplingProbability = st.SamplingRate
		ops.PerOperation = append([]operationStrategy(nil), def.PerOperation...)
		st.Operations = &ops
		return st
	}
	seen := make(map[string]bool, len(st.Operations.PerOperation))
	for _, op := range st.Operations.PerOperation {
		seen[op.Operation] = true
	}
	for _, op := range def.PerOperation {
		if !seen[op.Operation] {
			st.Operations.PerOperation = append(st.Operations.PerOperation, op)
		}
	}
	return st
}

func (fs *fileServiceStrategy) build() (strategy, error) {
	st, err := buildStrategy(fs.Type, fs.Param)
	if err != nil {
		return strategy{}, err
	}
	if fs.DefaultLowerBound != nil && len(fs.OperationStrategies) == 0 {
		return strategy{}, errors.New("default_lower_bound_traces_per_second needs operation_strategies")
	}
	if len(fs.OperationStrategies) == 0 {
		return st, nil
	}
	ops := &operationSampling{DefaultSamplingProbability: defaultOperationProbability}
	if st.Type == probabilistic {
		ops.DefaultSamplingProbability = st.SamplingRate
	}
	if fs.DefaultLowerBound != nil {
		lb := *fs.DefaultLowerBound
		if !(lb >= 0 && lb <= maxTracesPerSecond) {
			return strategy{}, fmt.Errorf("default_lower_bound_traces_per_second must be between 0 and %d, got %v", maxTracesPerSecond, lb)
		}
		ops.DefaultLowerBoundTracesPerSecond = lb
	}
	seen := make(map[string]bool, len(fs.OperationStrategies))
	for i, fo := range fs.OperationStrategies {
		if fo.Operation == "" {
			return strategy{}, fmt.Errorf("operation_strategies[%d]: operation must be set", i)
		}
		if seen[fo.Operation] {
			return strategy{}, fmt.Errorf("operation_strategies[%d]: operation %q appears twice", i, fo.Operation)
		}
		seen[fo.Operation] = true
		// Jaeger skips non-probabilistic operation strategies with a warning; refusing
		// them says so before anyone relies on one.
		if fo.Type != typeProbabilistic {
			return strategy{}, fmt.Errorf("operation_strategies[%d] (operation %q): type must be %q (the protocol has no per-operation rate limiting), got %q",
				i, fo.Operation, typeProbabilistic, fo.Type)
		}
		ost, err := buildStrategy(fo.Type, fo.Param)
		if err != nil {
			return strategy{}, fmt.Errorf("operation_strategies[%d] (operation %q): %w", i, fo.Operation, err)
		}
		ops.PerOperation = append(ops.PerOperation, operationStrategy{Operation: fo.Operation, SamplingRate: ost.SamplingRate})
	}
	st.Operations = ops
	return st, nil
}

func buildStrategy(typ string, param *float64) (strategy, error) {
	if typ != typeProbabilistic && typ != typeRateLimiting {
		return strategy{}, fmt.Errorf("type must be %q or %q, got %q", typeProbabilistic, typeRateLimiting, typ)
	}
	if param == nil {
		return strategy{}, errors.New("param must be set")
	}
	p := *param
	if typ == typeProbabilistic {
		if !(p >= 0 && p <= 1) {
			return strategy{}, fmt.Errorf("probabilistic param is a probability between 0 and 1, got %v", p)
		}
		return strategy{Type: probabilistic, SamplingRate: p}, nil
	}
	if !(p >= 0 && p <= maxTracesPerSecond) || p != math.Trunc(p) {
		return strategy{}, fmt.Errorf("ratelimiting param is whole traces per second between 0 and %d (Thrift's int16), got %v", maxTracesPerSecond, p)
	}
	return strategy{Type: rateLimiting, MaxTracesPerSecond: int32(p)}, nil
}

// The proto-JSON of jaeger.api_v2.SamplingStrategyResponse, field for field in proto
// order. strategyType is always written, so clients that read it never guess.
type wireResponse struct {
	StrategyType          any                `json:"strategyType"`
	ProbabilisticSampling *wireProbabilistic `json:"probabilisticSampling,omitempty"`
	RateLimitingSampling  *wireRateLimiting  `json:"rateLimitingSampling,omitempty"`
	OperationSampling     *wireOperations    `json:"operationSampling,omitempty"`
}

type wireProbabilistic struct {
	SamplingRate float64 `json:"samplingRate"`
}

type wireRateLimiting struct {
	MaxTracesPerSecond int32 `json:"maxTracesPerSecond"`
}

type wireOperations struct {
	DefaultSamplingProbability       float64         `json:"defaultSamplingProbability"`
	DefaultLowerBoundTracesPerSecond float64         `json:"defaultLowerBoundTracesPerSecond,omitempty"`
	PerOperationStrategies           []wireOperation `json:"perOperationStrategies"`
}

type wireOperation struct {
	Operation             string            `json:"operation"`
	ProbabilisticSampling wireProbabilistic `json:"probabilisticSampling"`
}

var strategyTypeNames = [...]string{probabilistic: "PROBABILISTIC", rateLimiting: "RATE_LIMITING"}

// encode writes the response; numeric selects the enum's number over its name.
func (st strategy) encode(numeric bool) []byte {
	w := wireResponse{StrategyType: strategyTypeNames[st.Type]}
	if numeric {
		w.StrategyType = int32(st.Type)
	}
	switch st.Type {
	case probabilistic:
		w.ProbabilisticSampling = &wireProbabilistic{SamplingRate: st.SamplingRate}
	case rateLimiting:
		w.RateLimitingSampling = &wireRateLimiting{MaxTracesPerSecond: st.MaxTracesPerSecond}
	}
	if ops := st.Operations; ops != nil {
		w.OperationSampling = &wireOperations{
			DefaultSamplingProbability:       ops.DefaultSamplingProbability,
			DefaultLowerBoundTracesPerSecond: ops.DefaultLowerBoundTracesPerSecond,
			PerOperationStrategies:           make([]wireOperation, 0, len(ops.PerOperation)),
		}
		for _, op := range ops.PerOperation {
			w.OperationSampling.PerOperationStrategies = append(w.OperationSampling.PerOperationStrategies,
				wireOperation{Operation: op.Operation, ProbabilisticSampling: wireProbabilistic{SamplingRate: op.SamplingRate}})
		}
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic("BUG: marshal sampling strategy: " + err.Error())
	}
	return b
}
