package sampler

import (
	"fmt"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/otlpbody"
)

// policy names where a decision's randomness came from, as contrib's metric does.
type policy uint8

const (
	policyTraceIDW3C         policy = iota // R from the trace ID
	policySamplingRandomness               // R from the rv sub-key
	policyTraceIDHash                      // hash_seed
	policyMissingRandomness                // all-zero trace ID and no rv
	policyRandomnessInUse                  // hash_seed refused: rv or th already there
	policyInvalidTraceState                // hash_seed refused: unreadable tracestate
	policySamplingPriority                 // the span's sampling.priority decided
	numPolicies
)

var policyNames = [numPolicies]string{
	"trace_id_w3c", "sampling_randomness", "trace_id_hash", "missing_randomness",
	"randomness_in_use", "invalid_tracestate", "sampling_priority",
}

// priority is what a span's sampling.priority attribute asks for (OpenTracing's
// semantic tag, read as contrib's probabilistic_sampler reads it).
type priority uint8

const (
	priorityDefer priority = iota // absent, negative or unreadable: the probability decides
	priorityKeep                  // above 0
	priorityDrop                  // exactly 0
)

// samplingPriorityKey is the attribute contrib's probabilistic_sampler obeys.
const samplingPriorityKey = otlpbody.SamplingPriorityKey

// spanPriority reads sampling.priority as contrib does: an int, a double or a string
// holding a number; 0 drops, above 0 keeps, anything else defers. A span without
// attributes costs one length check.
func spanPriority(sp ptrace.Span) priority {
	attrs := sp.Attributes()
	if attrs.Len() == 0 {
		return priorityDefer
	}
	v, ok := attrs.Get(samplingPriorityKey)
	if !ok {
		return priorityDefer
	}
	var f float64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		f = float64(v.Int())
	case pcommon.ValueTypeDouble:
		f = v.Double()
	case pcommon.ValueTypeStr:
		var err error
		if f, err = strconv.ParseFloat(v.Str(), 64); err != nil {
			return priorityDefer
		}
	default:
		return priorityDefer
	}
	switch {
	case f == 0:
		return priorityDrop
	case f > 0:
		return priorityKeep
	}
	return priorityDefer // negative or NaN
}

// rate is one configured percentage, compiled once.
type rate struct {
	pct   float64
	never bool   // 0%: nothing is kept (never is not a probability, so no th either)
	t     uint64 // threshold of equalizing and hash_seed, and of proportional without th
	ratio float64
	// emptyTS is the tracestate a kept span with an empty one gets: precomputed so
	// the common case writes a constant string and allocates nothing.
	emptyTS string
}

func compileRate(mode Mode, pct float64, precision int) (rate, error) {
	r := rate{pct: pct, ratio: pct / 100}
	if pct == 0 {
		r.never, r.t = true, MaxAdjustedCount
		return r, nil
	}
	switch mode {
	case HashSeed:
		t, ok := hashSeedThreshold(pct)
		if !ok { // under one bucket in 16384: contrib keeps nothing
			r.never, r.t = true, MaxAdjustedCount
			return r, nil
		}
		r.t = t
	default:
		t, ok := ProbabilityToThreshold(max(r.ratio, MinProbability), precision)
		if !ok {
			return r, fmt.Errorf("percentage %v has no threshold", pct)
		}
		r.t = t
		if t != 0 {
			r.emptyTS = string(AppendTValue([]byte("ot=th:"), t))
		}
	}
	return r, nil
}

// decision is the outcome for one span.
type decision struct {
	keep    bool
	forced  bool // sampling.priority decided, not the probability
	policy  policy
	erased  bool   // an inconsistent or unreadable th was erased
	rewrite bool   // the tracestate changes to ts
	ts      string // the new tracestate when rewrite
}

// head makes the per-span decision. It depends only on the trace ID, the span's
// tracestate and the rate, so every span of a trace, on every node, gets the same one.
type head struct {
	mode       Mode
	precision  int
	seed       uint32
	failClosed bool
}

// decide returns the decision for one span. buf is scratch space for a rewritten
// tracestate; the empty-tracestate path never touches it.
func (h *head) decide(tid pcommon.TraceID, raw string, r *rate, buf []byte) decision {
	if h.mode == HashSeed {
		return h.decideHashSeed(tid, raw, r, buf)
	}
	var ts traceState
	if raw != "" {
		ts = parseTraceState(raw)
	}
	var d decision
	var R uint64
	switch {
	case ts.rvOK:
		R, d.policy = ts.r, policySamplingRandomness
	case tid.IsEmpty():
		// No randomness at all: there is nothing consistent to decide on, so the span
		// is dropped, as contrib does (ingest refuses such spans before they get here).
		d.policy = policyMissingRandomness
		return d
	default:
		R, d.policy = TraceIDRandomness(tid), policyTraceIDW3C
	}
	// The spec: a th that R does not reach (the span was sampled although R < T) is
	// inconsistent and erased; so is one that cannot be read. Either way the stage goes
	// on as if no probability had arrived.
	inTH := ts.thOK
	if ts.hasTH && (!ts.thOK || R < ts.t) {
		inTH, d.erased = false, true
	}
	if r.never {
		return d
	}
	T := r.t
	switch h.mode {
	case Equalizing:
		if inTH && ts.t > T {
			T = ts.t
		}
	case Proportional:
		if inTH {
			T = ts.t
			if r.ratio < 1 {
				t, ok := ProbabilityToThreshold(ThresholdProbability(ts.t)*r.ratio, h.precision)
				if !ok { // the product is under 2^-56: no threshold expresses it
					return d
				}
				// Rounding to the precision could lower T below T_in, and a stage may
				// only raise T.
				T = max(T, t)
			}
		}
	}
	d.keep = R >= T
	if !d.keep {
		return d
	}
	inT := uint64(0)
	if inTH {
		inT = ts.t
	}
	switch {
	case T == inT && !d.erased:
		// The probability is unchanged (in particular, 100% with no th): the
		// tracestate stays byte for byte as it came.
	case raw == "":
		d.rewrite, d.ts = true, r.emptyTS
	default:
		d.rewrite = true
		d.ts = string(appendTraceState(buf[:0], raw, otEdit{setTH: T != 0 || inTH, th: T}))
	}
	return d
}

// decideHashSeed is contrib's hash_seed mode (REFERENCE.md §2.2), fail_closed included.
func (h *head) decideHashSeed(tid pcommon.TraceID, raw string, r *rate, buf []byte) decision {
	var d decision
	var ts traceState
	if raw != "" {
		ts = parseTraceState(raw)
	}
	switch {
	case ts.hasRV || ts.hasTH:
		// Another sampler already decided on OTel randomness: hash_seed would decide
		// on different randomness and break the trace. Equalizing or proportional are
		// the modes for a second tier.
		d.policy = policyRandomnessInUse
	case ts.malformed:
		d.policy = policyInvalidTraceState
	case tid.IsEmpty():
		d.policy = policyMissingRandomness
	default:
		d.policy = policyTraceIDHash
		if r.never {
			return d
		}
		R := hashSeedRandomness(tid, h.seed)
		if d.keep = R >= r.t; d.keep {
			d.rewrite = true
			d.ts = string(appendTraceState(buf[:0], raw, otEdit{setRV: true, rv: R, setTH: true, th: r.t}))
		}
		return d
	}
	d.keep = !h.failClosed
	return d
}

// withPriority overrides d, the probability's decision for a span, by its
// sampling.priority, as contrib's probabilistic_sampler does after fail_closed: 0 drops
// the span, above 0 keeps it, in every mode, whatever the rate. A kept span's th says it
// was kept with probability 1 (th:0), unless it arrived with a th: a stage may only
// raise T, so an incoming consistent th stays. hash_seed writes its rv as well, and
// leaves a span it refuses (rv or th already there, unreadable tracestate) untouched.
// At 100% nothing is written, as for every span at 100%.
func (h *head) withPriority(d decision, tid pcommon.TraceID, raw string, r *rate, prio priority, buf []byte) decision {
	d.forced, d.policy = true, policySamplingPriority
	if prio == priorityDrop {
		d.keep, d.rewrite, d.ts = false, false, ""
		return d
	}
	d.keep = true
	if h.mode == HashSeed {
		return h.priorityHashSeed(d, tid, raw, r, buf)
	}
	if !r.never && r.t == 0 {
		// 100%: decide already wrote what a 100% stage writes (nothing, or an erasure);
		// only a span without randomness was dropped, and priority keeps it as it came.
		return d
	}
	var ts traceState
	if raw != "" {
		ts = parseTraceState(raw)
	}
	var R uint64
	haveR := true
	switch {
	case ts.rvOK:
		R = ts.r
	case tid.IsEmpty():
		haveR = false
	default:
		R = TraceIDRandomness(tid)
	}
	inTH := ts.thOK
	d.erased = false
	if ts.hasTH && (!ts.thOK || (haveR && R < ts.t)) {
		inTH, d.erased = false, true
	}
	switch {
	case inTH && !d.erased:
		// T_in stays (a stage never lowers T): the tracestate is unchanged.
		d.rewrite, d.ts = false, ""
	case raw == "":
		d.rewrite, d.ts = true, alwaysTS
	default:
		d.rewrite = true
		d.ts = string(appendTraceState(buf[:0], raw, otEdit{setTH: true, th: 0}))
	}
	return d
}

// alwaysTS is the tracestate of a span kept with probability 1 that came without one.
const alwaysTS = "ot=th:0"

func (h *head) priorityHashSeed(d decision, tid pcommon.TraceID, raw string, r *rate, buf []byte) decision {
	var ts traceState
	if raw != "" {
		ts = parseTraceState(raw)
	}
	d.rewrite, d.ts = false, ""
	switch {
	case ts.malformed:
		// contrib cannot read it either, and passes the span untouched.
	case r.never:
		// contrib's never-sampler takes no randomness: th:0 unless a th is there.
		if !ts.hasTH {
			d.rewrite, d.ts = true, alwaysTS
			if raw != "" {
				d.ts = string(appendTraceState(buf[:0], raw, otEdit{setTH: true, th: 0}))
			}
		}
	case ts.hasRV || ts.hasTH || tid.IsEmpty():
		// Refused, or no randomness (ingest refuses empty trace IDs before they get
		// here): kept as it came.
	default:
		d.rewrite = true
		d.ts = string(appendTraceState(buf[:0], raw, otEdit{setRV: true, rv: hashSeedRandomness(tid, h.seed), setTH: true, th: 0}))
	}
	return d
}

// keepFraction is the expected kept fraction for a rate, for tests and docs.
func (r *rate) keepFraction() float64 {
	if r.never {
		return 0
	}
	return math.Max(0, ThresholdProbability(r.t))
}
