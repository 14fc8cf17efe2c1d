package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// State is a rule's alert state, as Prometheus names them.
type State string

const (
	StateInactive State = "inactive"
	StatePending  State = "pending"
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

const (
	maxExamples = 5  // example trace IDs kept per rule
	maxFirings  = 50 // recent firings kept for the query API
)

// StateStore keeps the engine's state document across restarts (the trace store).
type StateStore interface {
	PutAlertState(ctx context.Context, doc []byte) error
	GetAlertState(ctx context.Context) ([]byte, error)
}

// Settings are what the engine needs from its host.
type Settings struct {
	Logger        *zap.Logger
	MeterProvider metric.MeterProvider
	// Store, when set, keeps the state document; nil keeps it in memory only.
	Store StateStore
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Engine evaluates rules on the span stream.
type Engine struct {
	cfg   Config
	set   Settings
	rules []*ruleState
	pool  sync.Pool

	mu      sync.Mutex
	firings []Firing
	lastDoc []byte // the last state persisted, without its time; used by the loop only

	notifier *notifier
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	started  bool
}

type slot struct {
	sec          int64
	total, error float64
}

type ruleState struct {
	*Rule
	slots      []slot
	state      State
	activeAt   time.Time
	firedAt    time.Time
	resolvedAt time.Time
	value      float64
	holdUntil  time.Time // restored firing: do not resolve before the window refills
	examples   []example
}

type example struct {
	sec int64
	id  pcommon.TraceID
}

// Firing is one firing of a rule, for the query API.
type Firing struct {
	Group    string    `json:"group"`
	Alert    string    `json:"alert"`
	StartsAt time.Time `json:"startsAt"`
	EndsAt   time.Time `json:"endsAt,omitzero"`
	Value    float64   `json:"value"`
	TraceIDs []string  `json:"traceIDs"`
}

// NewEngine compiles nothing: rules come from cfg.Rules() (already validated).
func NewEngine(cfg Config, rules []*Rule, set Settings) (*Engine, error) {
	if set.Now == nil {
		set.Now = time.Now
	}
	if set.Logger == nil {
		set.Logger = zap.NewNop()
	}
	e := &Engine{cfg: cfg, set: set, wake: make(chan struct{}, 1)}
	for _, r := range rules {
		n := int(math.Ceil(r.Window.Seconds())) + 1
		e.rules = append(e.rules, &ruleState{Rule: r, slots: make([]slot, n), state: StateInactive})
	}
	e.pool.New = func() any { return &Batch{e: e, acc: make([]ruleAcc, len(e.rules))} }
	if cfg.Webhook != "" {
		n, err := newNotifier(cfg, set)
		if err != nil {
			return nil, err
		}
		e.notifier = n
	}
	return e, nil
}

// HasRules reports whether there is anything to evaluate.
func (e *Engine) HasRules() bool { return len(e.rules) > 0 }

// Start restores the persisted state and starts the evaluation loop and the notifier.
func (e *Engine) Start(ctx context.Context) error {
	if e.set.Store != nil {
		doc, err := e.set.Store.GetAlertState(ctx)
		if err != nil {
			return fmt.Errorf("read alert state: %w", err)
		}
		e.restore(doc)
	}
	e.stop, e.done = make(chan struct{}), make(chan struct{})
	e.started = true
	if e.notifier != nil {
		e.notifier.start()
	}
	go e.loop()
	return nil
}

// Shutdown stops the loop and the notifier (after one last delivery attempt of what
// is pending, bounded by ctx) and persists the state. Safe without Start and twice.
func (e *Engine) Shutdown(ctx context.Context) error {
	if !e.started {
		return nil
	}
	e.started = false
	close(e.stop)
	<-e.done
	if e.notifier != nil {
		e.notifier.shutdown(ctx)
	}
	return e.persist(ctx)
}

func (e *Engine) loop() {
	defer close(e.done)
	t := time.NewTicker(e.cfg.EvaluationInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.EvaluateAll()
		case <-e.wake:
		}
		if err := e.persist(context.Background()); err != nil {
			e.set.Logger.Warn("persist alert state", zap.Error(err))
		}
	}
}

// EvaluateAll evaluates every rule now (the loop does it every evaluation interval).
func (e *Engine) EvaluateAll() {
	now := e.set.Now()
	e.mu.Lock()
	for _, r := range e.rules {
		e.evaluate(r, now)
	}
	e.mu.Unlock()
}

// Batch accumulates one batch of spans for the rules, without locking; Commit adds
// it to the windows. The ingest path uses one per ConsumeTraces call.
type Batch struct {
	e        *Engine
	acc      []ruleAcc
	cand     []int
	resAttrs pcommon.Map
	touched  []int
}

type ruleAcc struct {
	total, errs float64
	ex          [maxExamples]pcommon.TraceID
	nex         int
	touched     bool
}

// NewBatch returns an empty batch.
func (e *Engine) NewBatch() *Batch { return e.pool.Get().(*Batch) }

// Resource starts the spans of one resource; it returns false when no rule can match
// them, so the caller may skip Span calls.
func (b *Batch) Resource(service string, attrs pcommon.Map) bool {
	b.cand = b.cand[:0]
	b.resAttrs = attrs
	for i, r := range b.e.rules {
		if r.matchesService(service) {
			b.cand = append(b.cand, i)
		}
	}
	return len(b.cand) > 0
}

// Span counts one span of the current resource with weight adj.
func (b *Batch) Span(sp ptrace.Span, adj float64) {
	if len(b.cand) == 0 {
		return
	}
	isErr := sp.Status().Code() == ptrace.StatusCodeError
	name := sp.Name()
	attrs := sp.Attributes()
	for _, i := range b.cand {
		r := b.e.rules[i]
		if !r.matchesSpan(name, attrs, b.resAttrs) {
			continue
		}
		a := &b.acc[i]
		if !a.touched {
			a.touched = true
			b.touched = append(b.touched, i)
		}
		a.total += adj
		if isErr {
			a.errs += adj
			if a.nex < maxExamples {
				a.ex[a.nex] = sp.TraceID()
				a.nex++
			}
		}
	}
}

// Commit adds the batch to the rules' windows and evaluates the rules it touched, so
// that a firing is noticed on arrival. The batch must not be used afterwards.
func (e *Engine) Commit(b *Batch) {
	if len(b.touched) > 0 {
		now := e.set.Now()
		sec := now.Unix()
		e.mu.Lock()
		for _, i := range b.touched {
			r, a := e.rules[i], &b.acc[i]
			s := &r.slots[sec%int64(len(r.slots))]
			if s.sec != sec {
				*s = slot{sec: sec}
			}
			s.total += a.total
			s.error += a.errs
			for _, id := range a.ex[:a.nex] {
				r.addExample(sec, id)
			}
			e.evaluate(r, now)
			*a = ruleAcc{}
		}
		e.mu.Unlock()
		b.touched = b.touched[:0]
	}
	b.cand = b.cand[:0]
	b.resAttrs = pcommon.Map{}
	e.pool.Put(b)
}

func (r *ruleState) addExample(sec int64, id pcommon.TraceID) {
	for i := range r.examples {
		if r.examples[i].id == id {
			r.examples[i].sec = sec
			return
		}
	}
	if len(r.examples) < maxExamples {
		r.examples = append(r.examples, example{sec: sec, id: id})
		return
	}
	copy(r.examples, r.examples[1:])
	r.examples[len(r.examples)-1] = example{sec: sec, id: id}
}

// window sums the slots of the last Window seconds up to now.
func (r *ruleState) window(now time.Time) (total, errs float64) {
	sec := now.Unix()
	from := sec - int64(math.Ceil(r.Window.Seconds()))
	for _, s := range r.slots {
		if s.sec > from && s.sec <= sec {
			total += s.total
			errs += s.error
		}
	}
	return total, errs
}

// traceIDs returns the example trace IDs of the window, newest first; an alert that
// is not inactive names at least its latest example.
func (r *ruleState) traceIDs(now time.Time) []string {
	from := now.Unix() - int64(math.Ceil(r.Window.Seconds()))
	var out []string
	for i := len(r.examples) - 1; i >= 0; i-- {
		if r.examples[i].sec > from {
			out = append(out, r.examples[i].id.String())
		}
	}
	if len(out) == 0 && len(r.examples) > 0 && r.state != StateInactive {
		out = append(out, r.examples[len(r.examples)-1].id.String())
	}
	return out
}

// evaluate moves a rule through its states. Called with mu held.
func (e *Engine) evaluate(r *ruleState, now time.Time) {
	total, errs := r.window(now)
	cond, v := r.exceeds(total, errs)
	r.value = v
	switch r.state {
	case StateInactive, StateResolved:
		if !cond {
			return
		}
		r.activeAt = now
		if r.For > 0 {
			r.state = StatePending
			return
		}
		e.fire(r, now)
	case StatePending:
		if !cond {
			r.state = StateInactive
			return
		}
		if now.Sub(r.activeAt) >= r.For {
			e.fire(r, now)
		}
	case StateFiring:
		if cond {
			e.update(r, now, false)
			return
		}
		if now.Before(r.holdUntil) {
			return
		}
		r.state = StateResolved
		r.resolvedAt = now
		for i := len(e.firings) - 1; i >= 0; i-- {
			if f := &e.firings[i]; f.Group == r.Group && f.Alert == r.Name && f.EndsAt.IsZero() {
				f.EndsAt = now
				break
			}
		}
		e.update(r, now, true)
	}
}

func (e *Engine) fire(r *ruleState, now time.Time) {
	r.state = StateFiring
	r.firedAt = now
	r.holdUntil = time.Time{}
	e.firings = append(e.firings, Firing{Group: r.Group, Alert: r.Name, StartsAt: r.activeAt, Value: r.value, TraceIDs: r.traceIDs(now)})
	if len(e.firings) > maxFirings {
		e.firings = append(e.firings[:0], e.firings[len(e.firings)-maxFirings:]...)
	}
	e.update(r, now, false)
	select {
	case e.wake <- struct{}{}: // persist soon
	default:
	}
}

// update hands the alert's current form to the notifier.
func (e *Engine) update(r *ruleState, now time.Time, resolved bool) {
	if e.notifier == nil {
		return
	}
	e.notifier.set(r.Group+"\x00"+r.Name, e.alertOf(r, now, resolved), resolved)
}

// Alert is one alert in the Alertmanager v2 API's PostableAlert form.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

func (e *Engine) alertOf(r *ruleState, now time.Time, resolved bool) Alert {
	labels := make(map[string]string, len(r.Labels)+1)
	for k, v := range r.Labels {
		labels[k] = v
	}
	labels["alertname"] = r.Name
	ann := make(map[string]string, len(r.Annotations)+3)
	for k, v := range r.Annotations {
		ann[k] = v
	}
	ids := r.traceIDs(now)
	ann["trace_ids"] = strings.Join(ids, ",")
	ann["condition"] = r.Condition
	ann["value"] = strconv.FormatFloat(r.value, 'g', 6, 64)
	a := Alert{Labels: labels, Annotations: ann, StartsAt: r.activeAt.UTC(), EndsAt: now.Add(4 * e.cfg.ResendInterval).UTC()}
	if resolved {
		a.EndsAt = r.resolvedAt.UTC()
	}
	if base := e.uiBase(); base != "" && len(ids) > 0 {
		a.GeneratorURL = base + "/trace/" + ids[0]
	}
	return a
}

func (e *Engine) uiBase() string {
	u := strings.TrimRight(e.cfg.UIURL, "/")
	if u != "" && !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return u
}

// RuleStatus is a rule with its state, for the query API.
type RuleStatus struct {
	Group       string            `json:"group"`
	Alert       string            `json:"alert"`
	Condition   string            `json:"condition"`
	Window      string            `json:"window"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       State             `json:"state"`
	Value       float64           `json:"value"`
	ActiveAt    time.Time         `json:"activeAt,omitzero"`
	FiredAt     time.Time         `json:"firedAt,omitzero"`
	ResolvedAt  time.Time         `json:"resolvedAt,omitzero"`
	TraceIDs    []string          `json:"traceIDs"`
}

// Status is the engine's state document: what the query API lists and what a restart
// restores.
type Status struct {
	UpdatedAt time.Time    `json:"updatedAt"`
	Rules     []RuleStatus `json:"rules"`
	Firings   []Firing     `json:"firings"`
	Webhook   *Delivery    `json:"webhook,omitempty"`
}

// Status returns the current state of every rule and the recent firings.
func (e *Engine) Status() Status {
	now := e.set.Now()
	e.mu.Lock()
	st := Status{UpdatedAt: now.UTC(), Rules: make([]RuleStatus, 0, len(e.rules)), Firings: append([]Firing(nil), e.firings...)}
	for _, r := range e.rules {
		ids := r.traceIDs(now)
		if ids == nil {
			ids = []string{}
		}
		st.Rules = append(st.Rules, RuleStatus{Group: r.Group, Alert: r.Name, Condition: r.Condition,
			Window: r.Window.String(), For: r.For.String(), Labels: r.Labels, Annotations: r.Annotations,
			State: r.state, Value: r.value, ActiveAt: r.activeAt, FiredAt: r.firedAt, ResolvedAt: r.resolvedAt, TraceIDs: ids})
	}
	e.mu.Unlock()
	sort.SliceStable(st.Firings, func(i, j int) bool { return st.Firings[i].StartsAt.After(st.Firings[j].StartsAt) })
	if e.notifier != nil {
		d := e.notifier.delivery()
		st.Webhook = &d
	}
	return st
}

// persist writes the state document when anything in it changed since the last
// write (a state, a value, the webhook's health): at most once per evaluation
// interval, plus once right after a firing.
func (e *Engine) persist(ctx context.Context) error {
	if e.set.Store == nil {
		return nil
	}
	st := e.Status()
	st.UpdatedAt = time.Time{}
	cmp, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode alert state: %w", err)
	}
	if bytes.Equal(cmp, e.lastDoc) {
		return nil
	}
	st.UpdatedAt = e.set.Now().UTC()
	doc, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode alert state: %w", err)
	}
	if err := e.set.Store.PutAlertState(ctx, doc); err != nil {
		return err
	}
	e.lastDoc = cmp
	return nil
}

// restore takes back firing alerts and recent firings from a state document. A
// restored firing alert is held for one window (its counts were not kept) before it
// may resolve.
func (e *Engine) restore(doc []byte) {
	if len(doc) == 0 {
		return
	}
	var st Status
	if err := json.Unmarshal(doc, &st); err != nil {
		e.set.Logger.Warn("alert state unreadable; starting with every rule inactive", zap.Error(err))
		return
	}
	now := e.set.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.firings = st.Firings
	for _, rs := range st.Rules {
		if rs.State != StateFiring {
			continue
		}
		for _, r := range e.rules {
			if r.Group != rs.Group || r.Name != rs.Alert {
				continue
			}
			r.state, r.activeAt, r.firedAt, r.value = StateFiring, rs.ActiveAt, rs.FiredAt, rs.Value
			r.holdUntil = now.Add(r.Window)
			for _, s := range rs.TraceIDs {
				var id pcommon.TraceID
				if n, err := hexDecode(id[:], s); err == nil && n == len(id) {
					r.examples = append(r.examples, example{sec: now.Unix(), id: id})
				}
			}
			e.update(r, now, false)
		}
	}
}
