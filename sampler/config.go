package sampler

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Mode is how the head sampler computes its threshold (REFERENCE.md §2).
type Mode string

const (
	// Equalizing (the default) uses T = max(T_in, T_cfg): already-sampled traces at
	// or below the configured probability pass one for one, the rest are brought down
	// to it.
	Equalizing Mode = "equalizing"
	// Proportional multiplies the incoming probability by the configured one, so the
	// stage's output volume is the configured fraction of its input volume.
	Proportional Mode = "proportional"
	// HashSeed is the contrib probabilistic_sampler's FNV-1a-32 14-bit decision, bit
	// for bit, for tiers migrating from it. Prefer equalizing or proportional.
	HashSeed Mode = "hash_seed"
)

// Config is the spoor_sampler processor's configuration.
type Config struct {
	// Mode is equalizing (default), proportional or hash_seed.
	Mode Mode `mapstructure:"mode"`
	// SamplingPercentage is the default rate, 0 to 100; 100 passes spans through.
	SamplingPercentage float64 `mapstructure:"sampling_percentage"`
	// SamplingPrecision is the number of hex digits of th written (1 to 14, default 4,
	// as SDKs do); digits are added near 0% and 100% as the specification says.
	SamplingPrecision int `mapstructure:"sampling_precision"`
	// HashSeed seeds hash_seed mode; use the same seed on every node of a tier.
	HashSeed uint32 `mapstructure:"hash_seed"`
	// FailClosed (default true) drops, in hash_seed mode, spans whose tracestate
	// already carries rv or th or cannot be read, as contrib does.
	FailClosed bool `mapstructure:"fail_closed"`
	// Services override the default rate per service (the resource's service.name)
	// and, inside a service, per operation (the span name). See the package doc for
	// which span's rate decides a trace.
	Services []ServiceConfig `mapstructure:"services"`
	// TraceRateCache is how many recent traces remember the rate that decided them, so
	// that with per-service or per-operation rates every span of a trace, however its
	// spans are batched, is decided at the same rate (see doc.go). 0: only spans in the
	// same batch share their trace's rate.
	TraceRateCache int `mapstructure:"trace_rate_cache"`
	// Tail keeps whole traces that head sampling would drop when one of their spans
	// errs, is slow or matches an attribute rule (see doc.go).
	Tail TailConfig `mapstructure:"tail"`
}

// TailConfig is the tail stage of the sampler.
type TailConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// DecisionWait is how long the spans that head sampling dropped are held waiting
	// for a span of their trace that matches a policy, counted from the arrival of the
	// batch they came in.
	DecisionWait time.Duration `mapstructure:"decision_wait"`
	// MaxTraces and MaxSpans cap what is held while deciding (a trace counted once per
	// incoming batch it has held spans in); beyond them the oldest held batch's traces
	// get their head decision (their spans are dropped) and are counted.
	MaxTraces int `mapstructure:"max_traces"`
	MaxSpans  int `mapstructure:"max_spans"`
	// DecisionCache is how many recent keeps are remembered so that a span arriving
	// after a policy kept its trace is kept too (0: none are). A trace whose wait
	// ended is not remembered: its later spans are held afresh.
	DecisionCache int            `mapstructure:"decision_cache"`
	Policies      PoliciesConfig `mapstructure:"policies"`
	// HoldRequestBytes lets the stage copy the spans it holds out of the protobuf
	// bytes of the request they came in (internal/otlpbody) instead of encoding them
	// again: much cheaper, and right only when no component between the receiver and
	// the sampler changes spans. spoor sets it itself from the pipelines of its config
	// (true when only spoor_ingest and spoor_analytics precede the sampler and every
	// receiver of the pipeline is a receiver, not a connector) and replaces a value
	// written in the config that those pipelines do not allow. A batch that does not
	// match its request's bytes span for span is held as without it. The same
	// condition lets the sampler, with the tail stage on or off, rely on what ingest
	// noted of the request (no span has sampling.priority, so none is looked up).
	HoldRequestBytes bool `mapstructure:"hold_request_bytes"`
}

// PoliciesConfig says which traces the tail stage keeps. Any one match keeps the trace.
type PoliciesConfig struct {
	// Errors keeps a trace when any of its spans has status Error.
	Errors bool `mapstructure:"errors"`
	// LatencyThreshold (0: off) keeps a trace when any of its spans lasts at least this
	// long (a trace's root span covers the trace).
	LatencyThreshold time.Duration `mapstructure:"latency_threshold"`
	// Attributes keep a trace when any span, or its resource, has a matching attribute.
	Attributes []AttributeRule `mapstructure:"attributes"`
}

// AttributeRule matches an attribute named Key whose value, as a string, equals Value or
// matches the regular expression Regex (exactly one of the two is set).
type AttributeRule struct {
	Key   string `mapstructure:"key"`
	Value string `mapstructure:"value"`
	Regex string `mapstructure:"regex"`
}

// ServiceConfig is one service's rate and its operations' rates.
type ServiceConfig struct {
	Name string `mapstructure:"name"`
	// Percentage is the service's rate; unset means the default rate.
	Percentage *float64          `mapstructure:"percentage"`
	Operations []OperationConfig `mapstructure:"operations"`
}

// OperationConfig is one operation's rate within its service.
type OperationConfig struct {
	Name       string  `mapstructure:"name"`
	Percentage float64 `mapstructure:"percentage"`
}

func createDefaultConfig() *Config {
	return &Config{
		Mode:               Equalizing,
		SamplingPercentage: 100,
		SamplingPrecision:  DefaultPrecision,
		FailClosed:         true,
		TraceRateCache:     100_000,
		Tail: TailConfig{
			DecisionWait:  5 * time.Second,
			MaxTraces:     25_000,
			MaxSpans:      100_000,
			DecisionCache: 100_000,
			Policies:      PoliciesConfig{Errors: true},
		},
	}
}

// Validate checks the configuration without side effects.
func (c *Config) Validate() error {
	var errs []error
	switch c.Mode {
	case Equalizing, Proportional, HashSeed:
	default:
		errs = append(errs, fmt.Errorf("mode %q: want equalizing, proportional or hash_seed", c.Mode))
	}
	errs = append(errs, checkPercentage("sampling_percentage", c.SamplingPercentage))
	if c.SamplingPrecision < 1 || c.SamplingPrecision > NumHexDigits {
		errs = append(errs, fmt.Errorf("sampling_precision %d: want 1 to %d hex digits", c.SamplingPrecision, NumHexDigits))
	}
	if c.TraceRateCache < 0 {
		errs = append(errs, fmt.Errorf("trace_rate_cache %d: want 0 or more", c.TraceRateCache))
	}
	seen := map[string]bool{}
	for i, s := range c.Services {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("services[%d]: name is empty", i))
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("services[%d]: service %q is listed twice", i, s.Name))
		}
		seen[s.Name] = true
		if s.Percentage != nil {
			errs = append(errs, checkPercentage(fmt.Sprintf("services[%d] (%s) percentage", i, s.Name), *s.Percentage))
		}
		ops := map[string]bool{}
		for j, o := range s.Operations {
			if o.Name == "" {
				errs = append(errs, fmt.Errorf("services[%d].operations[%d]: name is empty", i, j))
			}
			if ops[o.Name] {
				errs = append(errs, fmt.Errorf("services[%d].operations[%d]: operation %q is listed twice", i, j, o.Name))
			}
			ops[o.Name] = true
			errs = append(errs, checkPercentage(fmt.Sprintf("services[%d].operations[%d] (%s) percentage", i, j, o.Name), o.Percentage))
		}
	}
	if c.Tail.Enabled {
		errs = append(errs, c.Tail.validate())
	}
	return errors.Join(errs...)
}

func (t *TailConfig) validate() error {
	var errs []error
	if t.DecisionWait <= 0 {
		errs = append(errs, fmt.Errorf("tail.decision_wait %v: want more than 0", t.DecisionWait))
	}
	if t.MaxTraces <= 0 {
		errs = append(errs, fmt.Errorf("tail.max_traces %d: want more than 0", t.MaxTraces))
	}
	if t.MaxSpans <= 0 {
		errs = append(errs, fmt.Errorf("tail.max_spans %d: want more than 0", t.MaxSpans))
	}
	if t.DecisionCache < 0 {
		errs = append(errs, fmt.Errorf("tail.decision_cache %d: want 0 or more", t.DecisionCache))
	}
	if t.Policies.LatencyThreshold < 0 {
		errs = append(errs, fmt.Errorf("tail.policies.latency_threshold %v: want 0 (off) or more", t.Policies.LatencyThreshold))
	}
	if !t.Policies.Errors && t.Policies.LatencyThreshold == 0 && len(t.Policies.Attributes) == 0 {
		errs = append(errs, errors.New("tail: enabled without any policy (errors, latency_threshold, attributes)"))
	}
	for i, a := range t.Policies.Attributes {
		if a.Key == "" {
			errs = append(errs, fmt.Errorf("tail.policies.attributes[%d]: key is empty", i))
		}
		if (a.Value == "") == (a.Regex == "") {
			errs = append(errs, fmt.Errorf("tail.policies.attributes[%d] (%s): want exactly one of value and regex", i, a.Key))
		}
		if a.Regex != "" {
			if _, err := regexp.Compile(a.Regex); err != nil {
				errs = append(errs, fmt.Errorf("tail.policies.attributes[%d] (%s) regex: %w", i, a.Key, err))
			}
		}
	}
	return errors.Join(errs...)
}

func checkPercentage(what string, p float64) error {
	if !(p >= 0 && p <= 100) {
		return fmt.Errorf("%s %v: want 0 to 100", what, p)
	}
	return nil
}
