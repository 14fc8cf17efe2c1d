package sampler

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// tailPolicy is what decided a trace in the tail stage.
type tailPolicy uint8

const (
	tailNone      tailPolicy = iota // no policy matched: the head decision stands
	tailError                       // a span has status Error
	tailLatency                     // a span, or the held spans together, last long enough
	tailAttribute                   // an attribute rule matched
	tailPriority                    // a span's sampling.priority is above 0
	numTailPolicies
)

// decidedHere marks, in a batch's matched map, a trace this batch decided to keep: its
// other spans in the batch are kept as part of the decision, not as late spans.
const decidedHere tailPolicy = 0x80

var tailPolicyNames = [numTailPolicies]string{"none", "error", "latency", "attribute", "sampling_priority"}

// degradeReason is why held spans got their head decision without waiting.
type degradeReason uint8

const (
	degradeMaxTraces degradeReason = iota
	degradeMaxSpans
	degradeShutdown
	numDegradeReasons
)

var degradeReasonNames = [numDegradeReasons]string{"max_traces", "max_spans", "shutdown"}

type attrRule struct {
	key, value string
	re         *regexp.Regexp
}

func (r *attrRule) matches(attrs pcommon.Map) bool {
	v, ok := attrs.Get(r.key)
	if !ok {
		return false
	}
	var s string
	if v.Type() == pcommon.ValueTypeStr {
		s = v.Str() // the common case, without the copy AsString makes
	} else {
		s = v.AsString()
	}
	if r.re != nil {
		return r.re.MatchString(s)
	}
	return s == r.value
}

// policies are the compiled tail policies.
type policies struct {
	errors  bool
	latency uint64 // nanoseconds; 0 is off
	attrs   []attrRule
}

func spanDuration(sp ptrace.Span) uint64 {
	if s, e := sp.StartTimestamp(), sp.EndTimestamp(); e > s {
		return uint64(e - s)
	}
	return 0
}

// match is the first policy that sp, whose sampling.priority is prio, matches;
// resource says whether its resource's attributes already matched a rule.
func (p *policies) match(sp ptrace.Span, prio priority, resource bool) tailPolicy {
	if p.errors && sp.Status().Code() == ptrace.StatusCodeError {
		return tailError
	}
	if p.latency != 0 && spanDuration(sp) >= p.latency {
		return tailLatency
	}
	if prio == priorityKeep {
		// Head sampling keeps the span itself; its trace is kept whole with it.
		return tailPriority
	}
	if resource {
		return tailAttribute
	}
	for i := range p.attrs {
		if p.attrs[i].matches(sp.Attributes()) {
			return tailAttribute
		}
	}
	return tailNone
}

func (p *policies) matchResource(rs ptrace.ResourceSpans) bool {
	for i := range p.attrs {
		if p.attrs[i].matches(rs.Resource().Attributes()) {
			return true
		}
	}
	return false
}

// pendingTrace is a trace whose head-dropped spans are held until a policy matches or
// its decision wait ends.
type pendingTrace struct {
	tid      pcommon.TraceID
	deadline int64 // unix nanoseconds
	spans    int
	// parts are the held batches its spans are in, each once (a reference each);
	// part0 holds the first, so that the common trace, held from one batch, costs no
	// allocation for it.
	parts    []*heldBatch
	part0    [1]*heldBatch
	minStart pcommon.Timestamp
	maxEnd   pcommon.Timestamp
	gone     bool // decided or degraded; the queue skips it
}

// heldBatch holds the head-dropped spans of one incoming batch, of every trace they
// belong to, with one resource and scope copy per scope of the batch rather than one
// per trace: a trace's spans are found by its ID only when a policy keeps it (a walk
// over the batches it is in), so holding a span costs no per-trace structure, and the
// many traces whose wait ends without a match are dropped by forgetting the batch.
type heldBatch struct {
	td ptrace.Traces
	// data is td's protobuf encoding once the batch that filled it has ended (seal, in
	// wire.go); td is then the zero Traces.
	data []byte
	// raw: the spans are their request's bytes (wire.go), td was never used, and their
	// th is erased when they are cut. keep, when not nil, says which spans of the
	// request data is (by walk order) are held: the whole request was kept, and
	// release gives it back to the door; else data is the held spans' own encoding.
	raw     bool
	keep    []uint64
	release func()
	// spans is how many spans were put in it; they count in tailStage.retained, against
	// max_spans, until the batch is freed, since the spans of traces already decided are
	// only freed with their batch.
	spans int
	refs  int  // pending traces with spans in it
	open  bool // the batch that fills it is still being walked
	// cur is where the spans of the scope being walked go, valid while curScope is that
	// scope's serial.
	cur      ptrace.SpanSlice
	curScope uint64
}

// cut moves the spans of trace tid out of the held batch into dst, creating dst's
// resource and scope copies for the scopes that have some, and returns dst.
func (hb *heldBatch) cut(tid pcommon.TraceID, dst ptrace.Traces) ptrace.Traces {
	if hb.data != nil {
		dst, err := cutWire(hb.data, hb.keep, tid, dst, hb.raw)
		if err != nil {
			// The batch is Spoor's own encoding, or fields of a request that pdata
			// decoded moments before, copied unchanged: a broken invariant.
			panic(err.Error())
		}
		return dst
	}
	rss := hb.td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			var out ptrace.SpanSlice
			found := false
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if sp.TraceID() != tid {
					continue
				}
				if !found {
					if dst == (ptrace.Traces{}) {
						dst = ptrace.NewTraces()
					}
					ors := dst.ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(ors.Resource())
					ors.SetSchemaUrl(rs.SchemaUrl())
					oss := ors.ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(oss.Scope())
					oss.SetSchemaUrl(ss.SchemaUrl())
					out, found = oss.Spans(), true
				}
				// The slot left behind is empty: its zero trace ID matches no trace.
				sp.MoveTo(out.AppendEmpty())
			}
		}
	}
	return dst
}

// decisionCache remembers the last n decisions (trace ID → V), in a ring so that its
// size never exceeds n: the head processor keeps the rate that decided each trace in
// one. (The tail stage keeps its decisions, tailNone meaning "the head decision", in the
// same map as its pending traces: tailStage.known.)
type decisionCache[V any] struct {
	m    map[pcommon.TraceID]V
	ring []pcommon.TraceID
	next int
	full bool
}

func newDecisionCache[V any](n int) decisionCache[V] {
	return decisionCache[V]{m: map[pcommon.TraceID]V{}, ring: make([]pcommon.TraceID, n)}
}

func (c *decisionCache[V]) get(tid pcommon.TraceID) (V, bool) {
	v, ok := c.m[tid]
	return v, ok
}

func (c *decisionCache[V]) put(tid pcommon.TraceID, v V) {
	if len(c.ring) == 0 {
		return
	}
	// One map operation to insert or update: the length says which it was.
	n := len(c.m)
	if c.m[tid] = v; len(c.m) == n {
		return
	}
	if c.full {
		delete(c.m, c.ring[c.next]) // not tid, which was not in the map
	}
	c.ring[c.next] = tid
	if c.next++; c.next == len(c.ring) {
		c.next, c.full = 0, true
	}
}

// tailStage holds the spans head sampling dropped until their trace is decided. Every
// field below mu is guarded by it.
type tailStage struct {
	pol       policies
	wait      time.Duration
	maxTraces int
	maxSpans  int
	// holdBytes: held spans may be copied from their request's bytes (wire.go).
	holdBytes bool
	now       func() time.Time // a field so that tests drive the clock
	// scratch receives the dropped spans a held batch would otherwise keep (guarded by mu).
	scratch ptrace.Span
	// batches are tailBatch values for reuse, their slices and map with them.
	batches sync.Pool

	mu sync.Mutex
	// known are the pending traces and the remembered decisions, in one table
	// (tracetable.go): a trace goes from pending to decided in place, so holding a
	// trace and ending its wait cost two operations fewer than a pending map and a
	// decision cache would (with the buffer full, one trace is evicted for each new one).
	known    traceTable
	npending int
	// decided is the ring of the decided traces in the map, oldest overwritten (and
	// forgotten) first, so at most decision_cache decisions are remembered.
	decided     []pcommon.TraceID
	decidedNext int
	decidedFull bool
	// queue is the pending traces oldest first (with gone ones not yet skipped); it is
	// compacted when the gone ones outnumber the live ones, so it stays under twice
	// max_traces.
	queue       []*pendingTrace
	qHead       int
	nGone       int
	spans       int // held spans of pending traces
	retained    int // spans in held batches not yet freed: what max_spans bounds
	scopeSerial uint64
	// spare are freed held batch buffers, for room; sparePTs gone pending traces, for
	// newPT.
	spare    [][]byte
	sparePTs []*pendingTrace
	// touched keeps what known.touch read (never used otherwise).
	touched uint64

	cancel context.CancelFunc
	wg     sync.WaitGroup

	traces, keptSpans   metric.Int64Counter
	degTraces, degSpans metric.Int64Counter
	late                metric.Int64Counter
	heldBatches         metric.Int64Counter
	bufSpans, bufTraces metric.Int64UpDownCounter
	polAttrs            [numTailPolicies]metric.AddOption
	spanAttrs           [numTailPolicies]metric.AddOption // sampled is policy != none
	degAttrs            [numDegradeReasons]metric.AddOption
	lateAttrs           [2]metric.AddOption
	heldAttrs           [2]metric.AddOption // [raw]
}

func newTailStage(cfg *TailConfig, m metric.Meter) (*tailStage, error) {
	t := &tailStage{
		pol:       policies{errors: cfg.Policies.Errors, latency: uint64(cfg.Policies.LatencyThreshold)},
		wait:      cfg.DecisionWait,
		maxTraces: cfg.MaxTraces,
		maxSpans:  cfg.MaxSpans,
		holdBytes: cfg.HoldRequestBytes,
		now:       time.Now,
		scratch:   ptrace.NewSpan(),
		known:     newTraceTable(cfg.MaxTraces + cfg.DecisionCache),
		decided:   make([]pcommon.TraceID, cfg.DecisionCache),
	}
	for i, a := range cfg.Policies.Attributes {
		r := attrRule{key: a.Key, value: a.Value}
		if a.Regex != "" {
			re, err := regexp.Compile(a.Regex)
			if err != nil {
				return nil, fmt.Errorf("tail.policies.attributes[%d] (%s) regex: %w", i, a.Key, err)
			}
			r.re = re
		}
		t.pol.attrs = append(t.pol.attrs, r)
	}
	var err error
	counter := func(dst *metric.Int64Counter, name, desc string) {
		if err == nil {
			if *dst, err = m.Int64Counter(name, metric.WithDescription(desc)); err != nil {
				err = fmt.Errorf("create %s counter: %w", name, err)
			}
		}
	}
	counter(&t.traces, "spoor_sampler_tail_traces",
		"Traces the tail stage decided, by policy: the policy that kept them (error, latency, attribute), or none when the decision wait ended without a match and the head decision stood.")
	counter(&t.keptSpans, "spoor_sampler_tail_spans",
		"Spans head sampling dropped that the tail stage held, by policy and sampled: kept because their trace matched a policy, or dropped when the wait ended with none.")
	counter(&t.degTraces, "spoor_sampler_tail_degraded_traces",
		"Held traces given their head decision (dropped) without waiting, by reason: max_traces, max_spans or shutdown.")
	counter(&t.degSpans, "spoor_sampler_tail_degraded_spans",
		"Head-dropped spans given their head decision (dropped) without waiting, by reason: max_traces, max_spans or shutdown.")
	counter(&t.late, "spoor_sampler_tail_late_spans",
		"Head-dropped spans that arrived after their trace's decision and followed it, by sampled.")
	counter(&t.heldBatches, "spoor_sampler_tail_held_batches",
		"Batches whose head-dropped spans the tail stage held, by held_as: request_bytes when they were copied from their request's protobuf bytes (tail.hold_request_bytes), encoded when they were encoded again.")
	if err != nil {
		return nil, err
	}
	if t.bufSpans, err = m.Int64UpDownCounter("spoor_sampler_tail_buffered_spans",
		metric.WithDescription("Spans held while their trace is decided.")); err != nil {
		return nil, fmt.Errorf("create buffered spans gauge: %w", err)
	}
	if t.bufTraces, err = m.Int64UpDownCounter("spoor_sampler_tail_buffered_traces",
		metric.WithDescription("Traces with spans held while they are decided.")); err != nil {
		return nil, fmt.Errorf("create buffered traces gauge: %w", err)
	}
	for p := range numTailPolicies {
		t.polAttrs[p] = metric.WithAttributeSet(attribute.NewSet(attribute.String("policy", tailPolicyNames[p])))
		t.spanAttrs[p] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("policy", tailPolicyNames[p]), attribute.Bool("sampled", p != tailNone)))
	}
	for r := range numDegradeReasons {
		t.degAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", degradeReasonNames[r])))
	}
	for s := range 2 {
		t.lateAttrs[s] = metric.WithAttributeSet(attribute.NewSet(attribute.Bool("sampled", s == 1)))
	}
	t.heldAttrs[0] = metric.WithAttributeSet(attribute.NewSet(attribute.String("held_as", "encoded")))
	t.heldAttrs[1] = metric.WithAttributeSet(attribute.NewSet(attribute.String("held_as", "request_bytes")))
	return t, nil
}

// tailCounts are one batch's or one sweep's tail figures, recorded once outside the lock.
type tailCounts struct {
	traces, spans       [numTailPolicies]int64
	degTraces, degSpans [numDegradeReasons]int64
	late                [2]int64
	held                [2]int64 // held batches, [raw]
	bufSpans, bufTraces int64    // deltas
}

func (t *tailStage) record(ctx context.Context, c *tailCounts) {
	for p := range numTailPolicies {
		if c.traces[p] != 0 {
			t.traces.Add(ctx, c.traces[p], t.polAttrs[p])
		}
		if c.spans[p] != 0 {
			t.keptSpans.Add(ctx, c.spans[p], t.spanAttrs[p])
		}
	}
	for r := range numDegradeReasons {
		if c.degTraces[r] != 0 {
			t.degTraces.Add(ctx, c.degTraces[r], t.degAttrs[r])
		}
		if c.degSpans[r] != 0 {
			t.degSpans.Add(ctx, c.degSpans[r], t.degAttrs[r])
		}
	}
	for s := range 2 {
		if c.late[s] != 0 {
			t.late.Add(ctx, c.late[s], t.lateAttrs[s])
		}
	}
	for raw := range 2 {
		if c.held[raw] != 0 {
			t.heldBatches.Add(ctx, c.held[raw], t.heldAttrs[raw])
		}
	}
	if c.bufSpans != 0 {
		t.bufSpans.Add(ctx, c.bufSpans)
	}
	if c.bufTraces != 0 {
		t.bufTraces.Add(ctx, c.bufTraces)
	}
}

// start runs the decision wait timer: a sweep every tenth of the wait (10 ms to 1 s),
// so a trace is decided at most a tenth late.
func (t *tailStage) start(context.Context, component.Host) error {
	if t.cancel != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	every := min(max(t.wait/10, 10*time.Millisecond), time.Second)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				t.sweep(ctx)
			}
		}
	}()
	return nil
}

// shutdown stops the timer and drops every held span, counted: they are spans head
// sampling dropped and no policy has matched, so dropping them is their head decision.
func (t *tailStage) shutdown(ctx context.Context) error {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
	var c tailCounts
	t.mu.Lock()
	for t.evictOldest(degradeShutdown, &c) != nil {
	}
	t.mu.Unlock()
	t.record(ctx, &c)
	return nil
}

// sweep ends the wait of every trace whose deadline has passed: no policy matched, so
// the head decision stands and its held spans are dropped.
func (t *tailStage) sweep(ctx context.Context) {
	now := t.now().UnixNano()
	var c tailCounts
	t.mu.Lock()
	for {
		pt := t.oldest()
		if pt == nil || pt.deadline > now {
			break
		}
		t.remove(pt, &c)
		t.unrefParts(pt)
		t.decide(pt.tid, tailNone)
		c.traces[tailNone]++
		c.spans[tailNone] += int64(pt.spans)
	}
	t.mu.Unlock()
	t.record(ctx, &c)
}

// oldest is the oldest live pending trace, skipping gone ones.
func (t *tailStage) oldest() *pendingTrace {
	for t.qHead < len(t.queue) && t.queue[t.qHead].gone {
		t.recyclePT(t.queue[t.qHead])
		t.queue[t.qHead] = nil
		t.qHead++
		t.nGone--
	}
	if t.qHead == len(t.queue) {
		t.queue, t.qHead = t.queue[:0], 0
		return nil
	}
	return t.queue[t.qHead]
}

// decide records tid's decision, replacing its pending entry if it has one (the caller
// removed it from the pending set first), and remembers it in the ring of the last
// decision_cache decisions. tid must not be decided already.
func (t *tailStage) decide(tid pcommon.TraceID, pol tailPolicy) {
	if len(t.decided) == 0 {
		t.known.del(tid) // no decision is remembered
		return
	}
	t.touchAhead()
	t.known.setDecided(tid, pol)
	if t.decidedFull {
		// The ring holds each decided trace once, and a decided trace is neither
		// pending nor decided again before it leaves the ring.
		t.known.del(t.decided[t.decidedNext])
	}
	t.decided[t.decidedNext] = tid
	if t.decidedNext++; t.decidedNext == len(t.decided) {
		t.decidedNext, t.decidedFull = 0, true
	}
}

// touchAhead is known.touch for the traces decide reaches a few calls later, in the
// order sweeps and evictions reach them: the oldest pending traces (replaced by their
// decision) and the ring's oldest decisions (forgotten), each a cache miss when its
// turn comes otherwise. A decision that comes out of order (a policy's) only makes one
// read useless.
func (t *tailStage) touchAhead() {
	const ahead = 8
	var tids [2]pcommon.TraceID
	n := 0
	if i := t.qHead + ahead; i < len(t.queue) {
		tids[n] = t.queue[i].tid
		n++
	}
	if t.decidedFull {
		tids[n] = t.decided[(t.decidedNext+ahead)%len(t.decided)]
		n++
	}
	t.touched += t.known.touch(tids[:n])
}

// maxSparePTs bounds the pending trace structs kept for reuse.
const maxSparePTs = 1024

// recyclePT keeps a gone pending trace that has left the queue for newPT. Nothing
// refers to it any more but a batch's lastPT, which is checked by trace ID, and a
// caller that is still reading it: it is cleared only when reused.
func (t *tailStage) recyclePT(pt *pendingTrace) {
	if len(t.sparePTs) < maxSparePTs {
		t.sparePTs = append(t.sparePTs, pt)
	}
}

// newPT returns an empty pending trace, reused when one is spare: with the buffer
// full, one trace leaves for each that comes.
func (t *tailStage) newPT() *pendingTrace {
	if n := len(t.sparePTs); n > 0 {
		pt := t.sparePTs[n-1]
		t.sparePTs[n-1] = nil
		t.sparePTs = t.sparePTs[:n-1]
		*pt = pendingTrace{}
		return pt
	}
	return &pendingTrace{}
}

// remove takes pt out of the pending set (its map entry stays until decide replaces
// it); its spans are the caller's.
func (t *tailStage) remove(pt *pendingTrace, c *tailCounts) {
	t.npending--
	pt.gone = true
	t.nGone++
	t.spans -= pt.spans
	c.bufSpans -= int64(pt.spans)
	c.bufTraces--
	if live := len(t.queue) - t.qHead - t.nGone; t.nGone > live+64 {
		q := t.queue[:0]
		for _, p := range t.queue[t.qHead:] {
			if !p.gone {
				q = append(q, p)
			} else {
				t.recyclePT(p)
			}
		}
		clear(t.queue[len(q):])
		t.queue, t.qHead, t.nGone = q, 0, 0
	}
}

// evictOldest gives the oldest pending trace its head decision (its held spans are
// dropped) and remembers that, so its later spans get the head decision too.
func (t *tailStage) evictOldest(why degradeReason, c *tailCounts) *pendingTrace {
	pt := t.oldest()
	if pt == nil {
		return nil
	}
	t.remove(pt, c)
	t.unrefParts(pt)
	t.decide(pt.tid, tailNone)
	c.degTraces[why]++
	c.degSpans[why] += int64(pt.spans)
	return pt
}

// unrefParts drops pt's references to its held batches, freeing those no pending trace
// and no batch being walked needs any more.
func (t *tailStage) unrefParts(pt *pendingTrace) {
	for _, hb := range pt.parts {
		t.unref(hb)
	}
	pt.parts = nil
}

func (t *tailStage) unref(hb *heldBatch) {
	if hb.refs--; hb.refs == 0 && !hb.open {
		t.free(hb)
	}
}

func (t *tailStage) free(hb *heldBatch) {
	t.retained -= hb.spans
	switch {
	case hb.release != nil:
		hb.release()
	case hb.raw && hb.keep == nil:
		t.recycle(hb.data)
	}
	hb.spans, hb.td, hb.data, hb.cur = 0, ptrace.Traces{}, nil, ptrace.SpanSlice{}
	hb.keep, hb.release = nil, nil
}

// maxSpareRooms bounds the freed held batch buffers kept for reuse: a sweep frees a
// tenth of decision_wait's batches at once (about 16 at the default config's rates).
const maxSpareRooms = 16

// room returns an empty buffer of at least n bytes for a held batch copied from its
// request: one a freed batch left when there is one (held batches are freed about as
// often as they are filled, so the stage stops allocating and zeroing ~100 KiB per
// batch), else a new one.
func (t *tailStage) room(n int) []byte {
	for len(t.spare) > 0 {
		b := t.spare[len(t.spare)-1]
		t.spare[len(t.spare)-1] = nil
		t.spare = t.spare[:len(t.spare)-1]
		if cap(b) >= n {
			return b[:0]
		}
	}
	// Headroom, so that the next request, a few bytes larger, fits too.
	return make([]byte, 0, n+n/8)
}

// recycle keeps a held batch's buffer, which nothing refers to any more, for room.
func (t *tailStage) recycle(b []byte) {
	if len(t.spare) < maxSpareRooms && cap(b) > 0 {
		t.spare = append(t.spare, b)
	}
}

// tailBatch is the tail stage's state while the head processor walks one batch.
type tailBatch struct {
	t       *tailStage
	matched map[pcommon.TraceID]tailPolicy // traces of this batch with a matching span; nil when none
	locked  bool
	now     int64
	rs      ptrace.ResourceSpans
	ss      ptrace.ScopeSpans
	scope   uint64     // serial of ss, 0 until a span of it is held
	held    *heldBatch // this batch's held spans, nil until one is held
	acts    []action   // the actions of the scope being walked
	// prios are the sampling.priority of the batch's spans in walk order, read once by
	// begin for the policies and used again by the head decision.
	prios []priority
	// tids are the batch's trace IDs (each run of one once), whose table slots lock
	// brings into the cache at once.
	tids []pcommon.TraceID
	// touched keeps what touchLines read (never used otherwise).
	touched byte
	// lastPT is the pending trace of the last span held: a trace's spans come one
	// after another, and its later ones skip the lookup while it stays pending (and
	// its, since pending traces are reused).
	lastPT  *pendingTrace
	cuts    []keptCut // traces kept in this batch, cut out of their held batches at its end
	release []ptrace.Traces
	c       tailCounts

	// wire: the held spans are kept as the request's bytes, body (wire.go). wspans
	// are its span fields in walk order, wscopes its scopes; scopeIdx is the scope
	// being walked and spanBase the walk index of its first span; heldIdx are the walk
	// indexes of the held spans, heldBytes their size, keepBits the same as a bitmap.
	wire                 bool
	body                 []byte
	wspans               [][]byte
	wscopes              []wireScope
	resOther, scopeOther []byte
	scopeIdx, spanBase   int
	heldIdx              []uint32
	heldBytes            int
	keepBits             []uint64
}

// keptCut is a kept trace whose held spans are moved out of parts when the batch ends (some
// may be in this batch's own held batch, still being filled).
type keptCut struct {
	tid pcommon.TraceID
	// one is the held batch of a trace held from one batch; parts those of a trace held
	// from several (never the pending trace's part0, which is reused with it).
	one   *heldBatch
	parts []*heldBatch
}

// begin finds the traces of td that match a policy: a matching span may come after its
// siblings in the batch, and they must not be held for a trace already decided.
// body is the request's bytes (internal/otlpbody), or nil; noPriority says that no span
// of td has a sampling.priority attribute.
func (t *tailStage) begin(td ptrace.Traces, body []byte, noPriority bool) *tailBatch {
	b, _ := t.batches.Get().(*tailBatch)
	if b == nil {
		b = &tailBatch{}
	}
	// Reused: its slices and map keep their room, empty (end cleared them).
	*b = tailBatch{t: t, now: t.now().UnixNano(), matched: b.matched,
		acts: b.acts[:0], prios: b.prios[:0], tids: b.tids[:0], cuts: b.cuts[:0], release: b.release[:0],
		wspans: b.wspans[:0], wscopes: b.wscopes[:0], resOther: b.resOther[:0],
		scopeOther: b.scopeOther[:0], scopeIdx: -1, heldIdx: b.heldIdx[:0], keepBits: b.keepBits[:0]}
	if t.holdBytes && body != nil {
		b.touched = touchLines(body)
		b.wire = b.indexWire(body, td)
		b.body = body
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		res := t.pol.matchResource(rss.At(i))
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				prio := priorityDefer
				if !noPriority {
					prio = spanPriority(sp)
				}
				b.prios = append(b.prios, prio)
				if tid := sp.TraceID(); len(b.tids) == 0 || b.tids[len(b.tids)-1] != tid {
					b.tids = append(b.tids, tid)
				}
				if pol := t.pol.match(sp, prio, res); pol != tailNone {
					if b.matched == nil {
						b.matched = map[pcommon.TraceID]tailPolicy{}
					}
					// (A reused map is empty: lookups on it cost as little as on nil.)
					if _, ok := b.matched[sp.TraceID()]; !ok {
						b.matched[sp.TraceID()] = pol
					}
				}
			}
		}
	}
	return b
}

func (b *tailBatch) lock() {
	if !b.locked {
		b.t.mu.Lock()
		b.locked = true
		// The batch's traces are looked up next (most of them new ones, each a miss).
		b.t.touched += b.t.known.touch(b.tids)
	}
}

// touchLines reads one byte of every 64 of b and returns their sum (for the caller to
// keep, so that the reads are not optimized away). The request's bytes were read by
// the receiver a while ago and are mostly out of the cache by now; indexWire's walk,
// whose every read depends on the last (the length before a span tells where the next
// one is), then waited for a cache miss at each span. Independent reads in order let
// the processor fetch many lines at once and stream the rest: in the share benchmark's
// profiles (10% sampling), indexWire took 1.5% of spoor's CPU, and 0.35% after this
// loop, which takes 0.6%.
func touchLines(b []byte) byte {
	var x byte
	for i := 0; i < len(b); i += 64 {
		x += b[i]
	}
	return x
}

// scopeSpans starts the walk of a scope whose first span is the batch's n-th.
func (b *tailBatch) scopeSpans(rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, n int) {
	b.rs, b.ss, b.scope = rs, ss, 0
	b.scopeIdx++
	b.spanBase = n
}

// action is what happens to a span of the batch: it stays, it goes, or it is held.
type action uint8

const (
	actKeep action = iota
	actDrop
	actHold
)

// span decides one span whose head decision is d: it stays in the batch, is dropped, or
// is held (its trace is then pending, with a reference to this batch's held batch; the
// span itself moves there when its scope is placed). The head-kept path touches neither
// lock nor map unless its trace matched a policy in this batch.
func (b *tailBatch) span(sp ptrace.Span, tid pcommon.TraceID, raw string, d *decision, buf []byte) action {
	t := b.t
	pol := b.matched[tid]
	if pol != tailNone && pol&decidedHere == 0 {
		// The trace matched in this batch. Unless an earlier batch decided it (then
		// this span is late and follows that decision, below), this batch decides it.
		b.lock()
		if e, ok := t.known.get(tid); !ok || e.pt != nil {
			b.keep(tid, pol)
			pol |= decidedHere
			b.matched[tid] = pol
		}
	}
	if d.forced && !d.keep {
		// sampling.priority 0 drops the span itself, whatever its trace's fate.
		return actDrop
	}
	if d.keep {
		// Head sampling keeps the span, as it would without the tail stage.
		if d.rewrite {
			sp.TraceState().FromRaw(d.ts)
		}
		return actKeep
	}
	b.lock()
	if pol&decidedHere != 0 {
		b.c.spans[pol&^decidedHere]++
		eraseTH(sp, raw, buf)
		return actKeep
	}
	pt := b.lastPT
	if pt == nil || pt.gone || pt.tid != tid {
		e, ok := t.known.get(tid)
		if cp := e.pol; ok && e.pt == nil {
			if cp == tailNone {
				b.c.late[0]++
				return actDrop
			}
			b.c.late[1]++
			b.c.spans[cp]++
			eraseTH(sp, raw, buf)
			return actKeep
		}
		pt = e.pt
		if pt == nil {
			for t.npending >= t.maxTraces {
				t.evictOldest(degradeMaxTraces, &b.c)
			}
			pt = t.newPT()
			pt.tid, pt.deadline = tid, b.now+int64(t.wait)
			pt.minStart, pt.maxEnd = sp.StartTimestamp(), sp.EndTimestamp()
			t.known.setPending(tid, pt)
			t.npending++
			t.queue = append(t.queue, pt)
			b.c.bufTraces++
		}
		b.lastPT = pt
	}
	for t.retained >= t.maxSpans {
		if ev := t.evictOldest(degradeMaxSpans, &b.c); ev == pt || ev == nil {
			// The trace was the oldest: it has its head decision now, and so does
			// this span.
			b.c.degSpans[degradeMaxSpans]++
			return actDrop
		}
	}
	pt.minStart = min(pt.minStart, sp.StartTimestamp())
	pt.maxEnd = max(pt.maxEnd, sp.EndTimestamp())
	if t.pol.latency != 0 && pt.maxEnd > pt.minStart && uint64(pt.maxEnd-pt.minStart) >= t.pol.latency {
		// The held spans together now cover the threshold.
		b.keep(tid, tailLatency)
		b.c.spans[tailLatency]++
		eraseTH(sp, raw, buf)
		return actKeep
	}
	hb := b.held
	if hb == nil {
		if b.wire {
			hb = &heldBatch{open: true, raw: true}
		} else {
			hb = &heldBatch{td: ptrace.NewTraces(), open: true}
		}
		b.held = hb
	}
	if !b.wire {
		// Held spans are only ever kept by a policy, never by a probability: th goes
		// now (for spans copied from the request, when they are cut).
		eraseTH(sp, raw, buf)
	}
	if n := len(pt.parts); n == 0 || pt.parts[n-1] != hb {
		if n == 0 && pt.parts == nil {
			pt.parts = pt.part0[:0]
		}
		pt.parts = append(pt.parts, hb)
		hb.refs++
	}
	hb.spans++
	t.retained++
	pt.spans++
	t.spans++
	b.c.bufSpans++
	return actHold
}

// place carries out the actions of the scope's spans: the kept ones stay, in their
// order, the others leave the batch, the held ones into the held batch. When most spans
// are held (low head rates), the scope's whole span list moves there at once and the
// few kept spans are moved back: one allocation per kept span instead of one per held
// span. The slots left in the held batch are empty, and dropped spans are emptied too,
// so the held batch keeps no data of theirs.
func (b *tailBatch) place(spans ptrace.SpanSlice) {
	nHold, nKeep := 0, 0
	for _, a := range b.acts {
		switch a {
		case actHold:
			nHold++
		case actKeep:
			nKeep++
		}
	}
	if nHold != 0 && b.wire {
		// The held spans stay in the request's bytes (end); their pdata goes as
		// dropped spans' does.
		for k, a := range b.acts {
			if a == actHold {
				i := b.spanBase + k
				b.heldIdx = append(b.heldIdx, uint32(i))
				b.heldBytes += len(b.wspans[i])
			}
		}
		nHold = 0
	}
	if nHold == 0 {
		if nKeep == len(b.acts) {
			return
		}
		i := 0
		spans.RemoveIf(func(ptrace.Span) bool {
			a := b.acts[i]
			i++
			return a != actKeep
		})
		return
	}
	dst := b.heldScope()
	if nHold >= nKeep {
		base := dst.Len()
		spans.MoveAndAppendTo(dst)
		for k, a := range b.acts {
			switch a {
			case actKeep:
				dst.At(base + k).MoveTo(spans.AppendEmpty())
			case actDrop:
				dst.At(base + k).MoveTo(b.t.scratch)
			}
		}
		return
	}
	for k, a := range b.acts {
		if a == actHold {
			spans.At(k).MoveTo(dst.AppendEmpty())
		}
	}
	i := 0
	spans.RemoveIf(func(ptrace.Span) bool {
		a := b.acts[i]
		i++
		return a != actKeep
	})
}

// heldScope is where the held spans of the scope being walked go in this batch's held
// batch: one resource and scope copy per scope of the batch.
func (b *tailBatch) heldScope() ptrace.SpanSlice {
	hb := b.held
	if hb.curScope == 0 || hb.curScope != b.scope {
		if b.scope == 0 {
			b.t.scopeSerial++
			b.scope = b.t.scopeSerial
		}
		rs := hb.td.ResourceSpans().AppendEmpty()
		b.rs.Resource().CopyTo(rs.Resource())
		rs.SetSchemaUrl(b.rs.SchemaUrl())
		ss := rs.ScopeSpans().AppendEmpty()
		b.ss.Scope().CopyTo(ss.Scope())
		ss.SetSchemaUrl(b.ss.SchemaUrl())
		hb.cur, hb.curScope = ss.Spans(), b.scope
	}
	return hb.cur
}

// keep records that a policy keeps the trace and releases its held spans into this
// batch, so they are stored, and acknowledged downstream, with it.
func (b *tailBatch) keep(tid pcommon.TraceID, pol tailPolicy) {
	t := b.t
	b.c.traces[pol]++
	if e, _ := t.known.get(tid); e.pt != nil {
		pt := e.pt
		t.remove(pt, &b.c)
		b.c.spans[pol] += int64(pt.spans)
		// The references stay until the cut, so the batches stay.
		kc := keptCut{tid: tid}
		if len(pt.parts) == 1 {
			kc.one = pt.parts[0]
		} else {
			kc.parts = pt.parts
		}
		b.cuts = append(b.cuts, kc)
		pt.parts = nil
	}
	t.decide(tid, pol)
}

// end cuts the kept traces' held spans out, frees what is no longer needed, unlocks,
// and appends the released spans to the batch.
func (b *tailBatch) end(ctx context.Context, td ptrace.Traces) {
	t := b.t
	if hb := b.held; hb != nil {
		hb.open = false
		if hb.raw {
			b.c.held[1]++
			// Until it is settled below, the held batch is the request's bytes, as
			// the cuts of this batch's kept traces read it.
			hb.data, hb.keep = b.body, b.heldBits()
		} else {
			b.c.held[0]++
		}
	}
	for _, c := range b.cuts {
		var out ptrace.Traces
		if c.one != nil {
			out = c.one.cut(c.tid, out)
			t.unref(c.one)
		}
		for _, hb := range c.parts {
			out = hb.cut(c.tid, out)
			t.unref(hb)
		}
		if out != (ptrace.Traces{}) {
			b.release = append(b.release, out)
		}
	}
	if b.held != nil {
		if b.held.refs == 0 {
			t.free(b.held)
		} else if hb := b.held; hb.raw {
			b.settleRaw(ctx, hb)
		} else {
			// Its spans wait now, encoded: the garbage collector does not mark them
			// (wire.go).
			b.held.seal()
		}
	}
	if b.locked {
		t.mu.Unlock()
	}
	for _, r := range b.release {
		r.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	t.record(ctx, &b.c)
	// The next batch reuses b's room; nothing of this batch stays reachable from it.
	clear(b.cuts)
	clear(b.release)
	clear(b.matched)
	clear(b.wspans) // they point into the request's bytes
	b.body = nil
	b.held, b.lastPT, b.rs, b.ss = nil, nil, ptrace.ResourceSpans{}, ptrace.ScopeSpans{}
	t.batches.Put(b)
}

// eraseTH removes th from a span a policy keeps in place of head sampling: its
// probability is unknown, and the specification says such a stage erases th.
func eraseTH(sp ptrace.Span, raw string, buf []byte) {
	if raw == "" {
		return
	}
	if ts := parseTraceState(raw); !ts.hasTH {
		return
	}
	sp.TraceState().FromRaw(string(appendTraceState(buf[:0], raw, otEdit{})))
}
