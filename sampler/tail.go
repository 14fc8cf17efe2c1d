package sampler

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
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
	tailLatency                     // a span lasts long enough
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

// heldBatch holds the head-dropped spans of one incoming batch, of every trace they
// belong to, with one resource and scope copy per scope of the batch rather than one
// per trace, for decision_wait from the batch's arrival. Nothing is kept per held
// trace but its ID in the batch's list: a trace's spans are found by its ID only when a
// policy keeps it (a search of the held batches, through each one's filter), and the
// many traces whose wait ends without a match are dropped by forgetting their batch,
// whole.
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
	// spans is the spans put in it; tids its traces, a trace once per run of its spans
	// one after another (a batch usually carries a trace's spans together), tid0 the
	// room of the first. They count in tailStage.retained and retainedTraces, against
	// max_spans and max_traces, until the batch is freed; cutSpans and cutTraces of
	// them were cut out for kept traces. filter is a Bloom filter of tids, built when
	// the batch ends, which a search for a kept trace reads before them (two bits, two
	// cache lines at most); nil for a batch of few traces, which are read directly
	// (with one-span requests, a fixed 1024-bit filter took a sixth of a held span's
	// memory).
	spans               int
	cutSpans, cutTraces int
	deadline            int64 // unix nanoseconds: its wait ends
	tids                []pcommon.TraceID
	tid0                [1]pcommon.TraceID
	filter              []uint64
	// cur is where the spans of the scope being walked go, valid while curScope is that
	// scope's serial.
	cur      ptrace.SpanSlice
	curScope uint64
}

// heldFilterMin is the most traces a held batch has without a filter; above it, the
// filter has 16 bits per trace (a power of two of them), two set per trace: about 1.4%
// false positives.
const heldFilterMin = 8

func filterHash(tid pcommon.TraceID) uint64 {
	return (binary.LittleEndian.Uint64(tid[8:]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(tid[:8]), 31)) * 0x9e3779b97f4a7c15
}

// traces is how many trace runs hb holds.
func (hb *heldBatch) traces() int { return len(hb.tids) }

// addTrace records that a run of tid's spans is held in hb.
func (hb *heldBatch) addTrace(tid pcommon.TraceID) {
	if hb.tids == nil {
		hb.tids = hb.tid0[:0]
	}
	hb.tids = append(hb.tids, tid)
}

// buildFilter makes hb's filter, once its batch has ended (nothing searches it before).
func (hb *heldBatch) buildFilter() {
	if len(hb.tids) <= heldFilterMin {
		return
	}
	words := 1
	for words*64 < 16*len(hb.tids) {
		words *= 2
	}
	hb.filter = make([]uint64, words)
	mask := uint64(words*64 - 1)
	for _, tid := range hb.tids {
		h := filterHash(tid)
		a, b := h&mask, (h>>32)&mask
		hb.filter[a/64] |= 1 << (a % 64)
		hb.filter[b/64] |= 1 << (b % 64)
	}
}

// runsOf is how many runs of tid's spans hb holds (0 for most batches, told by the
// filter).
func (hb *heldBatch) runsOf(tid pcommon.TraceID) int {
	if hb.filter != nil {
		h := filterHash(tid)
		mask := uint64(len(hb.filter)*64 - 1)
		a, b := h&mask, (h>>32)&mask
		if hb.filter[a/64]&(1<<(a%64)) == 0 || hb.filter[b/64]&(1<<(b%64)) == 0 {
			return 0
		}
	}
	n := 0
	for _, t := range hb.tids {
		if t == tid {
			n++
		}
	}
	return n
}

// cut moves the spans of the traces in want out of the held batch into dst, creating
// dst's resource and scope copies for the scopes that have some, adds to counts[i] the
// spans of want.tids[i], and returns dst.
func (hb *heldBatch) cut(want *traceSet, dst ptrace.Traces, counts []int) ptrace.Traces {
	if hb.data != nil {
		dst, err := cutWire(hb.data, hb.keep, want, dst, hb.raw, counts)
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
				w := want.index(sp.TraceID())
				if w < 0 {
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
				counts[w]++
			}
		}
	}
	return dst
}

// decisionCache remembers the last n decisions (trace ID → V), in a ring so that its
// size never exceeds n: the head processor keeps the rate that decided each trace in
// one, and the tail stage the policy that kept each trace (tailStage.kept).
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
	// kept are the last decision_cache traces a policy kept (by the policy), so that
	// their later spans are kept too. A trace whose wait ended is not remembered: a
	// later span of it is held afresh.
	kept decisionCache[tailPolicy]
	// queue is the held batches, oldest first: their waits end in this order.
	queue []*heldBatch
	qHead int
	// heldSpans and heldTraces are the held spans and trace runs not yet decided (the
	// buffered gauges); retained and retainedTraces those of the held batches not yet
	// freed, decided or not: what max_spans and max_traces bound.
	heldSpans, heldTraces    int
	retained, retainedTraces int
	scopeSerial              uint64
	// spare are freed held batch buffers, for room.
	spare [][]byte

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
		kept:      newDecisionCache[tailPolicy](cfg.DecisionCache),
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
		"Traces the tail stage decided, by policy: the policy that kept them (error, latency, attribute, sampling_priority), or none when the decision wait of a held batch ended without a match and the head decision stood (a trace counted once per held batch it had spans in).")
	counter(&t.keptSpans, "spoor_sampler_tail_spans",
		"Spans head sampling dropped that the tail stage held, by policy and sampled: kept because their trace matched a policy, or dropped when the wait ended with none.")
	counter(&t.degTraces, "spoor_sampler_tail_degraded_traces",
		"Held traces given their head decision (dropped) without waiting, by reason: max_traces, max_spans or shutdown (a trace counted once per held batch it had spans in).")
	counter(&t.degSpans, "spoor_sampler_tail_degraded_spans",
		"Head-dropped spans given their head decision (dropped) without waiting, by reason: max_traces, max_spans or shutdown.")
	counter(&t.late, "spoor_sampler_tail_late_spans",
		"Head-dropped spans that arrived after a policy kept their trace and were kept with it (sampled=true).")
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
		metric.WithDescription("Traces with spans held while they are decided (a trace counted once per held batch it has spans in).")); err != nil {
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
	for t.evictOldest(degradeShutdown, &c) {
	}
	t.mu.Unlock()
	t.record(ctx, &c)
	return nil
}

// sweep ends the wait of every held batch whose deadline has passed: no policy matched
// its traces still held, so their head decision stands and their spans are dropped.
func (t *tailStage) sweep(ctx context.Context) {
	now := t.now().UnixNano()
	var c tailCounts
	t.mu.Lock()
	for t.qHead < len(t.queue) && t.queue[t.qHead].deadline <= now {
		hb := t.pop()
		n, k := hb.spans-hb.cutSpans, hb.traces()-hb.cutTraces
		c.traces[tailNone] += int64(k)
		c.spans[tailNone] += int64(n)
		t.undecided(hb, &c)
		t.free(hb)
	}
	t.mu.Unlock()
	t.record(ctx, &c)
}

// pop takes the oldest held batch out of the queue.
func (t *tailStage) pop() *heldBatch {
	hb := t.queue[t.qHead]
	t.queue[t.qHead] = nil
	if t.qHead++; t.qHead == len(t.queue) {
		t.queue, t.qHead = t.queue[:0], 0
	} else if t.qHead > 64 && t.qHead*2 > len(t.queue) {
		n := copy(t.queue, t.queue[t.qHead:])
		clear(t.queue[n:])
		t.queue, t.qHead = t.queue[:n], 0
	}
	return hb
}

// undecided takes hb's spans and traces still held off the buffered counts: they have
// their decision now.
func (t *tailStage) undecided(hb *heldBatch, c *tailCounts) {
	n, k := hb.spans-hb.cutSpans, hb.traces()-hb.cutTraces
	t.heldSpans -= n
	t.heldTraces -= k
	c.bufSpans -= int64(n)
	c.bufTraces -= int64(k)
}

// evictOldest gives the traces still held in the oldest held batch their head decision
// (their spans are dropped) and frees the batch; false when no batch is held.
func (t *tailStage) evictOldest(why degradeReason, c *tailCounts) bool {
	if t.qHead == len(t.queue) {
		return false
	}
	hb := t.pop()
	c.degTraces[why] += int64(hb.traces() - hb.cutTraces)
	c.degSpans[why] += int64(hb.spans - hb.cutSpans)
	t.undecided(hb, c)
	t.free(hb)
	return true
}

func (t *tailStage) free(hb *heldBatch) {
	t.retained -= hb.spans
	t.retainedTraces -= hb.traces()
	switch {
	case hb.release != nil:
		hb.release()
	case hb.raw && hb.keep == nil:
		t.recycle(hb.data)
	}
	*hb = heldBatch{}
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
	// touched keeps what touchLines read (never used otherwise).
	touched byte
	// The run: the trace of the last head-dropped span, whose later spans, usually
	// next to it, skip the lookup. runPol is the policy that kept it in an earlier
	// batch (tailNone: none did), runHeld says its run is in the held batch, runOver
	// that it is not, for want of room (its spans get their head decision).
	inRun            bool
	runTID           pcommon.TraceID
	runPol           tailPolicy
	runHeld, runOver bool
	runWhy           degradeReason // why, when runOver
	cuts             []keptCut     // traces kept in this batch, cut out of the held batches at its end
	out              ptrace.Traces // their held spans, once cut
	// cutKept's room: the cuts found in a held batch, their IDs, runs and span counts.
	found, foundRuns, counts []int
	foundTIDs                []pcommon.TraceID
	set                      traceSet
	c                        tailCounts

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

// keptCut is a trace this batch kept, whose spans held in earlier batches are cut out at
// its end.
type keptCut struct {
	tid pcommon.TraceID
	pol tailPolicy
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
		acts: b.acts[:0], prios: b.prios[:0], cuts: b.cuts[:0], found: b.found[:0],
		foundRuns: b.foundRuns[:0], counts: b.counts[:0], foundTIDs: b.foundTIDs[:0], set: b.set,
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
// is held (in this batch's held batch, which it moves to when its scope is placed).
// The head-kept path touches neither lock nor map unless its trace matched a policy in
// this batch.
func (b *tailBatch) span(sp ptrace.Span, tid pcommon.TraceID, raw string, d *decision, buf []byte) action {
	t := b.t
	pol := b.matched[tid]
	if pol != tailNone && pol&decidedHere == 0 {
		// The trace matched in this batch. Unless an earlier batch kept it (then this
		// span is late and follows that decision, below), this batch keeps it.
		b.lock()
		if _, ok := t.kept.get(tid); !ok {
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
	if !b.inRun || b.runTID != tid {
		b.inRun, b.runTID, b.runHeld, b.runOver = true, tid, false, false
		b.runPol, _ = t.kept.get(tid)
	}
	if b.runPol != tailNone {
		// A policy kept the trace in an earlier batch: the late span follows it.
		b.c.late[1]++
		b.c.spans[b.runPol]++
		eraseTH(sp, raw, buf)
		return actKeep
	}
	if !b.runHeld && !b.runOver {
		for t.retainedTraces >= t.maxTraces {
			if !b.evict(degradeMaxTraces) {
				// This batch's own held traces fill max_traces.
				b.runOver, b.runWhy = true, degradeMaxTraces
				b.c.degTraces[degradeMaxTraces]++
				break
			}
		}
	}
	for !b.runOver && t.retained >= t.maxSpans {
		if !b.evict(degradeMaxSpans) {
			// This batch's own held spans fill max_spans.
			if !b.runHeld {
				b.runOver, b.runWhy = true, degradeMaxSpans
				b.c.degTraces[degradeMaxSpans]++
				break
			}
			b.c.degSpans[degradeMaxSpans]++
			return actDrop
		}
	}
	if b.runOver {
		// No room: the span gets its head decision now.
		b.c.degSpans[b.runWhy]++
		return actDrop
	}
	hb := b.held
	if hb == nil {
		if b.wire {
			hb = &heldBatch{raw: true}
		} else {
			hb = &heldBatch{td: ptrace.NewTraces()}
		}
		b.held = hb
	}
	if !b.wire {
		// Held spans are only ever kept by a policy, never by a probability: th goes
		// now (for spans copied from the request, when they are cut).
		eraseTH(sp, raw, buf)
	}
	if !b.runHeld {
		b.runHeld = true
		hb.addTrace(tid)
		t.retainedTraces++
		t.heldTraces++
		b.c.bufTraces++
	}
	hb.spans++
	t.retained++
	t.heldSpans++
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

// keep records that a policy keeps the trace; its spans held in earlier batches are cut
// out at the batch's end and stored, and acknowledged downstream, with it.
func (b *tailBatch) keep(tid pcommon.TraceID, pol tailPolicy) {
	b.c.traces[pol]++
	b.cuts = append(b.cuts, keptCut{tid: tid, pol: pol})
	b.t.kept.put(tid, pol)
}

// cutKept cuts the held spans of the traces this batch kept out of the held batches,
// into b.out: one pass over the queue, each batch's filter read once for them all, and
// one walk of a held batch for all of them it holds. (This batch's own held batch holds
// none: a trace that matches in a batch has none of its spans there held, begin saw to
// that.)
func (b *tailBatch) cutKept() {
	t := b.t
	for _, hb := range t.queue[t.qHead:] {
		b.cutFrom(hb)
	}
}

// cutFrom cuts the held spans of the traces this batch kept so far out of hb.
func (b *tailBatch) cutFrom(hb *heldBatch) {
	t := b.t
	b.found, b.foundTIDs, b.foundRuns = b.found[:0], b.foundTIDs[:0], b.foundRuns[:0]
	for k := range b.cuts {
		if runs := hb.runsOf(b.cuts[k].tid); runs > 0 {
			b.found = append(b.found, k)
			b.foundTIDs = append(b.foundTIDs, b.cuts[k].tid)
			b.foundRuns = append(b.foundRuns, runs)
		}
	}
	if len(b.found) == 0 {
		return
	}
	b.set.reset(b.foundTIDs)
	b.counts = append(b.counts[:0], make([]int, len(b.found))...)
	b.out = hb.cut(&b.set, b.out, b.counts)
	for j, k := range b.found {
		n, runs := b.counts[j], b.foundRuns[j]
		hb.cutSpans += n
		hb.cutTraces += runs
		t.heldSpans -= n
		t.heldTraces -= runs
		b.c.bufSpans -= int64(n)
		b.c.bufTraces -= int64(runs)
		b.c.spans[b.cuts[k].pol] += int64(n)
	}
}

// evict is tailStage.evictOldest for room in the walk of this batch: the traces it
// kept so far are cut out of the oldest held batch first, so that a keep is not lost
// to an eviction that comes after it in the same batch.
func (b *tailBatch) evict(why degradeReason) bool {
	t := b.t
	if len(b.cuts) > 0 && t.qHead < len(t.queue) {
		b.cutFrom(t.queue[t.qHead])
	}
	return t.evictOldest(why, &b.c)
}

// end cuts the kept traces' held spans out, queues this batch's held batch for its
// wait, unlocks, and appends the released spans to the batch.
func (b *tailBatch) end(ctx context.Context, td ptrace.Traces) {
	t := b.t
	hb := b.held
	if hb != nil {
		if hb.raw {
			b.c.held[1]++
			// Until it is settled below, the held batch is the request's bytes.
			hb.data, hb.keep = b.body, b.heldBits()
		} else {
			b.c.held[0]++
		}
	}
	if len(b.cuts) > 0 {
		b.cutKept()
	}
	if hb != nil {
		if hb.raw {
			b.settleRaw(ctx, hb)
		} else {
			// Its spans wait now, encoded: the garbage collector does not mark them
			// (wire.go).
			hb.seal()
		}
		hb.buildFilter()
		hb.deadline = b.now + int64(t.wait)
		t.queue = append(t.queue, hb)
	}
	if b.locked {
		t.mu.Unlock()
	}
	if b.out != (ptrace.Traces{}) {
		b.out.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	t.record(ctx, &b.c)
	// The next batch reuses b's room; nothing of this batch stays reachable from it.
	clear(b.cuts)
	b.out = ptrace.Traces{}
	b.set.reset(nil)
	clear(b.matched)
	clear(b.wspans) // they point into the request's bytes
	b.body = nil
	b.held, b.rs, b.ss = nil, ptrace.ResourceSpans{}, ptrace.ScopeSpans{}
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
