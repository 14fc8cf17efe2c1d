package analytics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/alerts"
	"github.com/spoortrace/spoor/internal/spanmatch"
	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/storageext"
)

// rollupCompactor is the optional ability of a store to merge old rollup deltas.
type rollupCompactor interface {
	CompactRollups(ctx context.Context, now time.Time) error
}

// compactEvery is how many flushes pass between two compactions.
const compactEvery = 30

type seriesKey struct {
	svc, op string
	kind    uint8
}

// series is one (service, operation, kind), kept for the process' life (bounded by
// MaxSeries) so that its metric attributes are built once.
type series struct {
	key seriesKey
	// The Prometheus RED metrics, cumulative and weighted, guarded by the processor's
	// mu: calls, errors, the duration histogram's counts per durationBounds bucket (the
	// last is +Inf) and the sum of durations in seconds; and the latest exemplar of
	// each sample. bucketAttrs[i] carries the series' attributes and le for the OTel
	// SDK, promLabels the same for spoor_metrics.
	calls, errors  float64
	buckets        [len(durationBounds) + 1]float64
	sum            float64
	callsEx, errEx exemplar
	bucketEx       [len(durationBounds) + 1]exemplar
	bucketAttrs    []metric.ObserveOption
	plainAttrs     metric.ObserveOption
	promLabels     []*dto.LabelPair

	// Shortcuts of aggregate, guarded by mu: the aggregate of minute curMinute in RED
	// generation curGen, and the index of the series in the batch batchSeq's touched
	// list.
	cur       *redAgg
	curGen    uint64
	curMinute uint32
	batchSeq  uint64
	delta     int
}

type redKey struct {
	s      *series
	minute uint32
}

type redAgg struct {
	calls, errors float64
	duration      storage.Histogram
}

// rec is one span of the batch being observed; its strings point into the batch.
type rec struct {
	key, parent uint64
	res         int32
	kind        uint8
	err         bool
	minute      uint32
	dur         int64
	adj         float64
	name, peer  string
	s           *series
	traceID     pcommon.TraceID
	spanID      pcommon.SpanID
}

type scratch struct {
	recs     []rec
	services []string
	svcIDs   []uint32
	touched  []touched
}

// touched is a series' share of the batch, for the metrics.
type touched struct {
	s             *series
	calls, errors float64
	ex            int // index in recs of the counters' exemplar span (the first error one if any)
	slow          int // index in recs of the slowest span, the duration histogram's exemplar
}

type analyticsProcessor struct {
	cfg *Config
	ts  component.TelemetrySettings
	tel *telemetry

	scratch sync.Pool

	mu       sync.Mutex
	series   map[seriesKey]*series
	red      map[redKey]*redAgg
	redGen   uint64 // bumped when red is swapped out by a flush
	batchSeq uint64
	graph    *graph
	now      func() time.Time

	store   storage.RollupWriter
	rules   []*alerts.Rule
	engine  *alerts.Engine       // set by start when there are rules
	pending *storage.RollupBatch // a batch whose write failed, retried next flush

	// exposed is set while spoor_metrics serves the RED families (families.go): the
	// OTel SDK then leaves them out.
	exposed    atomic.Bool
	unregister []func()

	stop    chan struct{}
	done    chan struct{}
	started bool
	flushMu sync.Mutex
	flushes int
}

func newProcessor(cfg *Config, ts component.TelemetrySettings) (*analyticsProcessor, error) {
	p := &analyticsProcessor{cfg: cfg, ts: ts, series: map[seriesKey]*series{}, red: map[redKey]*redAgg{}, now: time.Now}
	p.graph = newGraph(cfg.EdgeWait, cfg.MaxEdgeSpans, time.Now())
	p.scratch.New = func() any { return &scratch{} }
	tel, err := newTelemetry(ts.MeterProvider, p)
	if err != nil {
		return nil, err
	}
	p.tel = tel
	if p.rules, err = cfg.Alerts.Rules(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *analyticsProcessor) start(ctx context.Context, host component.Host) error {
	var stateStore alerts.StateStore
	if p.cfg.Storage.Type().String() != "" {
		st, err := storageext.GetStore(host, p.cfg.Storage)
		if err != nil {
			return err
		}
		p.store, stateStore = st, st
	}
	if len(p.rules) > 0 {
		eng, err := alerts.NewEngine(p.cfg.Alerts, p.rules, alerts.Settings{Logger: p.ts.Logger,
			MeterProvider: p.ts.MeterProvider, Store: stateStore})
		if err != nil {
			return err
		}
		if err := eng.Start(ctx); err != nil {
			return err
		}
		p.engine = eng
	}
	p.registerFamilies(host)
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	p.started = true
	go p.flushLoop()
	return nil
}

// shutdown decides every edge still waiting, flushes, and stops the alert engine.
// Safe without start and twice.
func (p *analyticsProcessor) shutdown(ctx context.Context) error {
	if !p.started {
		return nil
	}
	p.started = false
	p.unregisterFamilies()
	close(p.stop)
	<-p.done
	p.mu.Lock()
	p.graph.m.Drain()
	p.mu.Unlock()
	err := p.flush(ctx)
	err = errors.Join(err, p.tel.reg.Unregister())
	if p.engine != nil {
		err = errors.Join(err, p.engine.Shutdown(ctx))
	}
	return err
}

func (p *analyticsProcessor) flushLoop() {
	defer close(p.done)
	t := time.NewTicker(p.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if err := p.flush(context.Background()); err != nil {
				p.ts.Logger.Warn("analytics rollup flush", zap.Error(err))
			}
		}
	}
}

// flush writes the rollups counted since the last flush. A failed write is kept and
// retried with the next flush (one batch; an older failed one is dropped and counted).
func (p *analyticsProcessor) flush(ctx context.Context) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	p.graph.m.Tick(p.now())
	red := p.red
	p.red = make(map[redKey]*redAgg, len(red))
	p.redGen++
	edges := p.graph.take()
	p.mu.Unlock()
	b := storage.RollupBatch{Edges: edges, RED: make([]storage.REDRollup, 0, len(red))}
	for k, a := range red {
		b.RED = append(b.RED, storage.REDRollup{Minute: minuteTime(k.minute), Service: k.s.key.svc, Operation: k.s.key.op,
			Kind: k.s.key.kind, Calls: a.calls, Errors: a.errors, Duration: a.duration})
	}
	if p.store == nil {
		return nil
	}
	var errs []error
	if p.pending != nil {
		if err := p.store.WriteRollups(ctx, *p.pending); err != nil {
			p.tel.rollupsLost.Add(ctx, int64(len(p.pending.RED)+len(p.pending.Edges)))
			errs = append(errs, fmt.Errorf("retry of rollup write failed, rollups dropped: %w", err))
		}
		p.pending = nil
	}
	if len(b.RED)+len(b.Edges) > 0 {
		if err := p.store.WriteRollups(ctx, b); err != nil {
			p.pending = &b
			errs = append(errs, err)
		}
	}
	p.flushes++
	if c, ok := p.store.(rollupCompactor); ok && p.flushes%compactEvery == 0 {
		if err := c.CompactRollups(ctx, p.now()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// processTraces observes the batch and passes it on unchanged.
func (p *analyticsProcessor) processTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	p.observe(td)
	return td, nil
}

func serviceName(m pcommon.Map) string {
	if v, ok := m.Get("service.name"); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func (p *analyticsProcessor) observe(td ptrace.Traces) {
	sc := p.scratch.Get().(*scratch)
	defer p.scratch.Put(sc)
	sc.recs, sc.services, sc.svcIDs = sc.recs[:0], sc.services[:0], sc.svcIDs[:0]
	var ab *alerts.Batch
	if p.engine != nil {
		ab = p.engine.NewBatch()
	}
	now := p.now()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		svc := serviceName(rs.Resource().Attributes())
		sc.services = append(sc.services, svc)
		alerting := ab != nil && ab.Resource(svc, rs.Resource().Attributes())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				start, end := sp.StartTimestamp(), sp.EndTimestamp()
				r := rec{res: int32(i), kind: uint8(sp.Kind()), err: sp.Status().Code() == ptrace.StatusCodeError,
					minute: uint32(uint64(start) / 60e9), adj: adjustedCount(sp.TraceState().AsRaw()), name: sp.Name(),
					traceID: sp.TraceID(), spanID: sp.SpanID()}
				if end > start {
					r.dur = int64(end - start)
				}
				r.key = spanmatch.Key(r.traceID, r.spanID)
				if ps := sp.ParentSpanID(); !ps.IsEmpty() {
					r.parent = spanmatch.Key(r.traceID, ps)
				}
				if isCaller(r.kind) {
					r.peer = peerName(sp.Attributes())
				}
				sc.recs = append(sc.recs, r)
				if alerting {
					ab.Span(sp, r.adj)
				}
			}
		}
	}
	if len(sc.recs) > 0 {
		p.aggregate(sc, now)
	}
	if ab != nil {
		p.engine.Commit(ab)
	}
}

// aggregate adds the batch to the RED series and the service graph under one lock.
// The common case costs no map operation for RED: consecutive spans of one series
// reuse it, and a series remembers its current minute's aggregate and its delta of the
// batch being aggregated.
func (p *analyticsProcessor) aggregate(sc *scratch, now time.Time) {
	sc.touched = sc.touched[:0]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batchSeq++
	for _, svc := range sc.services {
		sc.svcIDs = append(sc.svcIDs, p.graph.intern(svc))
	}
	var last *series
	for i := range sc.recs {
		r := &sc.recs[i]
		s := last
		if s == nil || s.key.kind != r.kind || s.key.op != r.name || s.key.svc != sc.services[r.res] {
			k := seriesKey{svc: sc.services[r.res], op: r.name, kind: r.kind}
			var ok bool
			if s, ok = p.series[k]; !ok {
				s = p.newSeries(k)
			}
			last = s
		}
		r.s = s
		a := s.cur
		if s.curGen != p.redGen || s.curMinute != r.minute || a == nil {
			var ok bool
			if a, ok = p.red[redKey{s, r.minute}]; !ok {
				a = &redAgg{}
				p.red[redKey{s, r.minute}] = a
			}
			s.cur, s.curGen, s.curMinute = a, p.redGen, r.minute
		}
		a.calls += r.adj
		if r.err {
			a.errors += r.adj
		}
		a.duration.Add(time.Duration(r.dur), r.adj)
		sec := float64(r.dur) / 1e9
		s.buckets[durationBucket(sec)] += r.adj
		s.sum += sec * r.adj
		if s.batchSeq != p.batchSeq {
			s.batchSeq, s.delta = p.batchSeq, len(sc.touched)
			sc.touched = append(sc.touched, touched{s: s, ex: i, slow: i})
		}
		d := &sc.touched[s.delta]
		d.calls += r.adj
		if r.err {
			if d.errors == 0 {
				d.ex = i
			}
			d.errors += r.adj
		}
		if r.dur > sc.recs[d.slow].dur {
			d.slow = i
		}
	}
	// Exemplars: every batch replaces each touched series' exemplars in place (no
	// allocation), so a scrape sees the latest — for the counters an error span of the
	// series when the batch had one, for the histogram the batch's slowest span in its
	// bucket.
	at := now.UnixNano()
	for i := range sc.touched {
		d := &sc.touched[i]
		s := d.s
		s.calls += d.calls
		r := &sc.recs[d.ex]
		s.callsEx.set(r, r.adj, at)
		if d.errors > 0 {
			s.errors += d.errors
			s.errEx.set(r, r.adj, at)
		}
		r = &sc.recs[d.slow]
		sec := float64(r.dur) / 1e9
		s.bucketEx[durationBucket(sec)].set(r, sec, at)
	}
	p.graph.observe(sc.recs, sc.svcIDs, now)
}

// newSeries creates the series of k (cloning its strings), or the overflow series of
// its service when MaxSeries is reached. Called with mu held.
func (p *analyticsProcessor) newSeries(k seriesKey) *series {
	if len(p.series) >= p.cfg.MaxSeries {
		k.op, k.kind = "(other)", 0
		if s, ok := p.series[k]; ok {
			return s
		}
	}
	k.svc, k.op = string([]byte(k.svc)), string([]byte(k.op))
	base := []attribute.KeyValue{attribute.String("service_name", k.svc), attribute.String("span_name", k.op),
		attribute.String("span_kind", spanKindName(k.kind))}
	set := attribute.NewSet(base...)
	s := &series{key: k, plainAttrs: metric.WithAttributeSet(set), promLabels: promLabels(k)}
	for i := range len(durationBounds) + 1 {
		le := "+Inf"
		if i < len(durationBounds) {
			le = strconv.FormatFloat(durationBounds[i], 'g', -1, 64)
		}
		s.bucketAttrs = append(s.bucketAttrs, metric.WithAttributeSet(attribute.NewSet(append(base[:3:3], attribute.String("le", le))...)))
	}
	p.series[k] = s
	return s
}

func spanKindName(k uint8) string {
	switch ptrace.SpanKind(k) {
	case ptrace.SpanKindInternal:
		return "internal"
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	}
	return "unspecified"
}
