package sampler

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/spoortrace/spoor/internal/otlpbody"
)

// serviceRates are one service's compiled rates.
type serviceRates struct {
	rate rate
	ops  map[string]*rate
}

// headProcessor drops the spans of unsampled traces and writes th into the kept ones.
type headProcessor struct {
	head
	def      rate
	services map[string]*serviceRates
	// overrides is set when any service or operation has its own rate: only then does a
	// batch need the first pass that gives each of its traces one rate.
	overrides bool
	// rateMu guards rateCache: the rate that decided each recent trace, so that its
	// spans in later batches are decided at the same rate (doc.go).
	rateMu    sync.Mutex
	rateCache decisionCache[*rate]

	spans, traces metric.Int64Counter
	erased        metric.Int64Counter
	attrs         [numPolicies][2]metric.AddOption // [policy][kept]
	ratePool      sync.Pool                        // *map[pcommon.TraceID]traceRate

	// tail, when enabled, holds the spans head sampling drops until their trace is
	// decided by the tail policies (tail.go).
	tail *tailStage
	// requestFacts: the facts ingest noted of a request (internal/otlpbody) hold for
	// the spans this processor gets, since nothing before it changes spans (the same
	// condition as tail.hold_request_bytes, which spoor sets from its pipelines).
	requestFacts bool
}

func newHeadProcessor(cfg *Config, mp metric.MeterProvider) (*headProcessor, error) {
	p := &headProcessor{
		head:     head{mode: cfg.Mode, precision: cfg.SamplingPrecision, seed: cfg.HashSeed, failClosed: cfg.FailClosed},
		services: map[string]*serviceRates{},
		// Set whether or not the tail stage is on: it says what precedes the sampler.
		requestFacts: cfg.Tail.HoldRequestBytes,
	}
	var err error
	if p.def, err = compileRate(cfg.Mode, cfg.SamplingPercentage, cfg.SamplingPrecision); err != nil {
		return nil, fmt.Errorf("sampling_percentage: %w", err)
	}
	for _, s := range cfg.Services {
		sr := &serviceRates{rate: p.def, ops: map[string]*rate{}}
		if s.Percentage != nil {
			if sr.rate, err = compileRate(cfg.Mode, *s.Percentage, cfg.SamplingPrecision); err != nil {
				return nil, fmt.Errorf("service %q: %w", s.Name, err)
			}
		}
		for _, o := range s.Operations {
			r, err := compileRate(cfg.Mode, o.Percentage, cfg.SamplingPrecision)
			if err != nil {
				return nil, fmt.Errorf("service %q operation %q: %w", s.Name, o.Name, err)
			}
			sr.ops[o.Name] = &r
		}
		p.services[s.Name] = sr
		p.overrides = true
	}
	p.ratePool.New = func() any { m := map[pcommon.TraceID]traceRate{}; return &m }
	if p.overrides {
		p.rateCache = newDecisionCache[*rate](cfg.TraceRateCache)
	}

	m := mp.Meter("github.com/spoortrace/spoor/sampler")
	if p.spans, err = m.Int64Counter("spoor_sampler_spans",
		metric.WithDescription("Spans the head sampler kept or dropped, by mode, policy (where the randomness came from, or why the span was refused) and sampled.")); err != nil {
		return nil, fmt.Errorf("create spans counter: %w", err)
	}
	if p.traces, err = m.Int64Counter("spoor_sampler_traces",
		metric.WithDescription("Traces the head sampler kept or dropped, counted on their root span (one per trace however its spans are batched), by mode, policy and sampled.")); err != nil {
		return nil, fmt.Errorf("create traces counter: %w", err)
	}
	if p.erased, err = m.Int64Counter("spoor_sampler_erased_thresholds",
		metric.WithDescription("Spans whose incoming th was inconsistent with their randomness or unreadable, and was erased.")); err != nil {
		return nil, fmt.Errorf("create erased thresholds counter: %w", err)
	}
	if cfg.Tail.Enabled {
		if p.tail, err = newTailStage(&cfg.Tail, m); err != nil {
			return nil, err
		}
	}
	for pol := range numPolicies {
		for kept := range 2 {
			p.attrs[pol][kept] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("mode", string(cfg.Mode)),
				attribute.String("policy", policyNames[pol]),
				attribute.Bool("sampled", kept == 1)))
		}
	}
	return p, nil
}

// rateOf is the rate of a span of service svc (nil: the default) named op.
func rateOf(svc *serviceRates, def *rate, op string) *rate {
	if svc == nil {
		return def
	}
	if r, ok := svc.ops[op]; ok {
		return r
	}
	return &svc.rate
}

func (p *headProcessor) serviceOf(rs ptrace.ResourceSpans) *serviceRates {
	if !p.overrides {
		return nil
	}
	v, ok := rs.Resource().Attributes().Get("service.name")
	if !ok || v.Type() != pcommon.ValueTypeStr {
		return nil
	}
	return p.services[v.Str()]
}

type counts struct {
	spans, traces [numPolicies][2]int64
	erased        int64
}

// processTraces decides every span. Which rate applies, with per-service or
// per-operation rates: one per trace, the one that decided the trace in an earlier batch,
// else its root span's when the root is in this batch, else its first span's here (see
// doc.go for why).
func (p *headProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var rates batchRates
	if p.overrides {
		mp := p.ratePool.Get().(*map[pcommon.TraceID]traceRate)
		defer func() { clear(*mp); p.ratePool.Put(mp) }()
		rates.m = *mp
		p.traceRates(td, rates.m)
	}
	var c counts
	var scratch [512]byte
	var memo decisionMemo
	// Looking sampling.priority up in every span costs as much as the rest of the head
	// decision (the span's attributes are out of the cache by now); ingest, which read
	// every key as they came in, notes when no span has it.
	noPriority := p.requestFacts && otlpbody.Facts(ctx)&otlpbody.NoSamplingPriority != 0
	if p.tail != nil {
		p.processWithTail(ctx, td, noPriority, &rates, &memo, &c, scratch[:0])
	} else {
		td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
			rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
				ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
					prio := priorityDefer
					if !noPriority {
						prio = spanPriority(sp)
					}
					d, _, _ := p.decideSpan(sp, prio, &rates, &memo, &c, scratch[:0])
					if d.keep && d.rewrite {
						sp.TraceState().FromRaw(d.ts)
					}
					return !d.keep
				})
				return ss.Spans().Len() == 0
			})
			return rs.ScopeSpans().Len() == 0
		})
	}
	p.record(ctx, &c)
	if td.ResourceSpans().Len() == 0 {
		return td, processorhelper.ErrSkipProcessingData
	}
	return td, nil
}

// decisionMemo is the last probability decision of a batch and what it depended on: a
// trace's spans come one after another with the same tracestate, so its later spans
// reuse the decision, and a rewritten tracestate, instead of reading and writing the
// tracestate again (decide depends on nothing else).
type decisionMemo struct {
	ok  bool
	tid pcommon.TraceID
	raw string
	r   *rate
	d   decision
}

// decideSpan is the head decision for one span whose sampling.priority is prio, counted
// in c; buf is scratch space for a rewritten tracestate.
func (p *headProcessor) decideSpan(sp ptrace.Span, prio priority, rates *batchRates, m *decisionMemo, c *counts, buf []byte) (decision, pcommon.TraceID, string) {
	tid := sp.TraceID()
	r := &p.def
	if p.overrides {
		r = rates.get(tid)
	}
	raw := sp.TraceState().AsRaw()
	var d decision
	if m.ok && tid == m.tid && r == m.r && raw == m.raw {
		d = m.d
	} else {
		d = p.decide(tid, raw, r, buf)
		*m = decisionMemo{ok: true, tid: tid, raw: raw, r: r, d: d}
	}
	if prio != priorityDefer {
		d = p.withPriority(d, tid, raw, r, prio, buf)
	}
	kept := 0
	if d.keep {
		kept = 1
	}
	c.spans[d.policy][kept]++
	if sp.ParentSpanID().IsEmpty() {
		c.traces[d.policy][kept]++
	}
	if d.erased {
		c.erased++
	}
	return d, tid, raw
}

// processWithTail decides every span with the tail stage: each scope's spans are
// decided first (kept, dropped or held), then moved at once (tailBatch.place).
// noPriority says that no span of td has a sampling.priority attribute.
func (p *headProcessor) processWithTail(ctx context.Context, td ptrace.Traces, noPriority bool, rates *batchRates, m *decisionMemo, c *counts, buf []byte) {
	tb := p.tail.begin(td, otlpbody.FromContext(ctx), noPriority)
	n := 0 // the span's index in walk order, for tb.prios
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			tb.scopeSpans(rs, ss, n)
			spans := ss.Spans()
			acts := tb.acts[:0]
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				d, tid, raw := p.decideSpan(sp, tb.prios[n], rates, m, c, buf)
				n++
				var a action
				switch {
				case !tid.IsEmpty():
					// d.ts is a constant or a fresh string: buf is free again.
					a = tb.span(sp, tid, raw, &d, buf)
				case d.keep:
					if d.rewrite {
						sp.TraceState().FromRaw(d.ts)
					}
					a = actKeep
				default:
					a = actDrop
				}
				acts = append(acts, a)
			}
			tb.acts = acts
			tb.place(spans)
			return spans.Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	tb.end(ctx, td)
}

// batchRates are the rates of a batch's traces, with the last one looked up remembered:
// a trace's spans often come one after another.
type batchRates struct {
	m     map[pcommon.TraceID]traceRate
	last  pcommon.TraceID
	lastR *rate
}

func (b *batchRates) get(tid pcommon.TraceID) *rate {
	if b.lastR == nil || tid != b.last {
		b.last, b.lastR = tid, b.m[tid].r
	}
	return b.lastR
}

// traceRate is the rate a trace of the batch is decided at, and whether it is its
// root's.
type traceRate struct {
	r    *rate
	root bool
}

// traceRates gives each trace of td one rate: the one remembered from an earlier batch,
// else its root span's if the root is in td, else the rate of its first span in td; a
// trace decided here is remembered for its later spans.
func (p *headProcessor) traceRates(td ptrace.Traces, rates map[pcommon.TraceID]traceRate) {
	rss := td.ResourceSpans()
	var last pcommon.TraceID
	haveLast := false
	for i := 0; i < rss.Len(); i++ {
		svc := p.serviceOf(rss.At(i))
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				tid := sp.TraceID()
				root := sp.ParentSpanID().IsEmpty()
				if haveLast && tid == last && !root {
					continue // the trace has its entry, which only a root span changes
				}
				last, haveLast = tid, true
				if tr, seen := rates[tid]; !seen || (root && !tr.root) {
					rates[tid] = traceRate{r: rateOf(svc, &p.def, sp.Name()), root: root}
				}
			}
		}
	}
	if len(p.rateCache.ring) == 0 {
		return
	}
	p.rateMu.Lock()
	defer p.rateMu.Unlock()
	for tid, tr := range rates {
		if tid.IsEmpty() {
			continue // no randomness: such spans are dropped, and they share no trace
		}
		if r, ok := p.rateCache.get(tid); ok {
			rates[tid] = traceRate{r: r, root: tr.root}
		} else {
			p.rateCache.put(tid, tr.r)
		}
	}
}

// record adds a batch's counts once, not once per span: the per-span cost stays an
// array increment.
func (p *headProcessor) record(ctx context.Context, c *counts) {
	for pol := range numPolicies {
		for kept := range 2 {
			if n := c.spans[pol][kept]; n != 0 {
				p.spans.Add(ctx, n, p.attrs[pol][kept])
			}
			if n := c.traces[pol][kept]; n != 0 {
				p.traces.Add(ctx, n, p.attrs[pol][kept])
			}
		}
	}
	if c.erased != 0 {
		p.erased.Add(ctx, c.erased, metric.WithAttributeSet(attribute.NewSet(attribute.String("mode", string(p.mode)))))
	}
}
