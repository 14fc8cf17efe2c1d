package alerts

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// spans builds one resource of service with n spans named op, errs of them errors,
// each with attribute payment.method=method; trace IDs start at first.
func spans(service, op, method string, n, errs int, first byte) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(op)
		sp.SetTraceID(pcommon.TraceID{first, byte(i), 1})
		sp.SetSpanID(pcommon.SpanID{byte(i), 1})
		sp.Attributes().PutStr("payment.method", method)
		if i < errs {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

func feed(e *Engine, td ptrace.Traces) {
	b := e.NewBatch()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		if !b.Resource(svc.Str(), rs.Resource().Attributes()) {
			continue
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			sps := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < sps.Len(); k++ {
				b.Span(sps.At(k), 1)
			}
		}
	}
	e.Commit(b)
}

func mustRules(t *testing.T, doc string) []*Rule {
	t.Helper()
	r, err := ParseRules([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func stateOf(e *Engine, name string) RuleStatus {
	for _, r := range e.Status().Rules {
		if r.Alert == name {
			return r
		}
	}
	return RuleStatus{}
}

// TestStateMachine: inactive → pending (condition holds, `for` not yet) → firing →
// resolved once the window slides past the errors; only matching spans count.
func TestStateMachine(t *testing.T) {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	rules := mustRules(t, `groups:
  - name: g
    rules:
      - alert: Declines
        match: {service: payment-service, operation: "=~char.*", attributes: {payment.method: card, tenant: "!=test"}}
        condition: error_count > 2
        window: 10s
        for: 3s
`)
	e, err := NewEngine(DefaultConfig(), rules, Settings{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	feed(e, spans("payment-service", "charge", "paypal", 10, 10, 1)) // wrong method
	feed(e, spans("orders", "charge", "card", 10, 10, 2))            // wrong service
	feed(e, spans("payment-service", "refund", "card", 10, 10, 3))   // wrong operation
	if s := stateOf(e, "Declines"); s.State != StateInactive || s.Value != 0 {
		t.Fatalf("after non-matching spans: %+v", s)
	}
	feed(e, spans("payment-service", "charge", "card", 5, 3, 4))
	if s := stateOf(e, "Declines"); s.State != StatePending || s.Value != 3 {
		t.Fatalf("after 3 errors: %+v, want pending with value 3", s)
	}
	c.advance(2 * time.Second)
	e.EvaluateAll()
	if s := stateOf(e, "Declines"); s.State != StatePending {
		t.Fatalf("2s later: %s, want pending", s.State)
	}
	c.advance(time.Second)
	e.EvaluateAll()
	s := stateOf(e, "Declines")
	if s.State != StateFiring || len(s.TraceIDs) != 3 || !strings.HasPrefix(s.TraceIDs[0], "04") {
		t.Fatalf("3s later: %+v, want firing with 3 example trace IDs of the matching spans", s)
	}
	c.advance(8 * time.Second)
	e.EvaluateAll()
	if s := stateOf(e, "Declines"); s.State != StateResolved {
		t.Fatalf("after the window: %s, want resolved", s.State)
	}
	st := e.Status()
	if len(st.Firings) != 1 || st.Firings[0].EndsAt.IsZero() || len(st.Firings[0].TraceIDs) != 3 {
		t.Fatalf("firings = %+v", st.Firings)
	}
	// A rate rule: 1 error in 4 is 25%.
	rules = mustRules(t, issueRules)
	e, err = NewEngine(DefaultConfig(), rules, Settings{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	feed(e, spans("payment-service", "charge", "card", 4, 1, 5))
	if s := stateOf(e, "CardDeclinesHigh"); s.State != StateFiring || s.Value != 0.25 {
		t.Fatalf("rate rule: %+v, want firing at 0.25 (for: 0s fires on arrival)", s)
	}
}

// webhook is a real HTTP server standing in for Alertmanager.
type webhook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	posts  [][]Alert
	times  []time.Time
	status atomic.Int32 // answer; 0 = 200
	hang   atomic.Bool
	hangCh chan struct{}
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{hangCh: make(chan struct{})}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if w.hang.Load() {
			select {
			case <-w.hangCh:
			case <-r.Context().Done():
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		if code := w.status.Load(); code != 0 {
			rw.WriteHeader(int(code))
			return
		}
		var alerts []Alert
		if err := json.Unmarshal(body, &alerts); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		w.mu.Lock()
		w.posts = append(w.posts, alerts)
		w.times = append(w.times, time.Now())
		w.mu.Unlock()
	}))
	t.Cleanup(func() {
		close(w.hangCh)
		w.srv.Close()
	})
	return w
}

func (w *webhook) received() [][]Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.posts)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookFiringResentResolved(t *testing.T) {
	w := newWebhook(t)
	cfg := DefaultConfig()
	cfg.Webhook = w.srv.URL + "/api/v2/alerts"
	cfg.UIURL = "spoor.example:16686"
	cfg.ResendInterval = 200 * time.Millisecond
	cfg.EvaluationInterval = 50 * time.Millisecond
	rules := mustRules(t, strings.Replace(issueRules, "window: 1m", "window: 1s", 1))
	e, err := NewEngine(cfg, rules, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	feed(e, spans("payment-service", "charge", "card", 2, 2, 7))
	waitFor(t, "the firing notification", 2*time.Second, func() bool { return len(w.received()) > 0 })
	a := w.received()[0][0]
	if a.Labels["alertname"] != "CardDeclinesHigh" || a.Labels["severity"] != "page" || len(a.Labels) != 2 {
		t.Errorf("labels = %v", a.Labels)
	}
	ids := strings.Split(a.Annotations["trace_ids"], ",")
	if len(ids) != 2 || !strings.HasPrefix(ids[0], "07") || a.Annotations["summary"] != "More than 5% of card charges fail" {
		t.Errorf("annotations = %v", a.Annotations)
	}
	if a.GeneratorURL != "http://spoor.example:16686/trace/"+ids[0] {
		t.Errorf("generatorURL = %q", a.GeneratorURL)
	}
	if a.StartsAt.IsZero() || !a.EndsAt.After(time.Now()) {
		t.Errorf("firing startsAt %v endsAt %v: endsAt must lie ahead", a.StartsAt, a.EndsAt)
	}
	// The window is 1s: the alert resolves, after having been re-sent at least once
	// while firing... only if firing lasts longer than the resend interval; keep it
	// firing with more errors for a while.
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		feed(e, spans("payment-service", "charge", "card", 1, 1, 8))
	}
	// A firing post's endsAt lies 4 re-send intervals ahead, so a late re-send on a
	// loaded machine can let it pass: the resolved notice is the post whose endsAt is
	// the rule's resolvedAt.
	waitFor(t, "the resolved state", 5*time.Second, func() bool {
		return stateOf(e, "CardDeclinesHigh").State == StateResolved
	})
	resolvedAt := stateOf(e, "CardDeclinesHigh").ResolvedAt
	waitFor(t, "the resolved notification", 5*time.Second, func() bool {
		p := w.received()
		return p[len(p)-1][0].EndsAt.Equal(resolvedAt.UTC())
	})
	p := w.received()
	if len(p) < 3 {
		t.Errorf("got %d posts, want firing, at least one re-send, resolved", len(p))
	}
	if s := stateOf(e, "CardDeclinesHigh"); s.State != StateResolved {
		t.Errorf("state %s, want resolved", s.State)
	}
}

// TestWebhookDownRetriesBehindBreaker: a refusing webhook is retried with backoff; after
// BreakerFailures the circuit opens for the cooldown; when the webhook recovers, the
// alert's latest state arrives; ingest (Commit) never waits for any of it, not even
// for a webhook that hangs.
func TestWebhookDownRetriesBehindBreaker(t *testing.T) {
	w := newWebhook(t)
	w.status.Store(http.StatusServiceUnavailable)
	var attempts atomic.Int32
	var attemptTimes sync.Map
	inner := w.srv.Config.Handler
	w.srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := attempts.Add(1)
		attemptTimes.Store(n, time.Now())
		inner.ServeHTTP(rw, r)
	})
	cfg := DefaultConfig()
	cfg.Webhook = w.srv.URL
	cfg.InitialBackoff = 10 * time.Millisecond
	cfg.MaxBackoff = 40 * time.Millisecond
	cfg.BreakerFailures = 3
	cfg.BreakerCooldown = 300 * time.Millisecond
	cfg.Timeout = 200 * time.Millisecond
	e, err := NewEngine(cfg, mustRules(t, issueRules), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	feed(e, spans("payment-service", "charge", "card", 2, 2, 9))
	waitFor(t, "4 attempts", 3*time.Second, func() bool { return attempts.Load() >= 4 })
	t3, _ := attemptTimes.Load(int32(3))
	t4, _ := attemptTimes.Load(int32(4))
	if gap := t4.(time.Time).Sub(t3.(time.Time)); gap < 250*time.Millisecond {
		t.Errorf("attempt 4 came %v after attempt 3; the open circuit must hold it for the cooldown", gap)
	}
	if d := e.Status().Webhook; d == nil || d.Failed < 3 || d.LastError == "" {
		t.Errorf("delivery status = %+v", d)
	}
	// Hanging webhook: ingest goes on at full speed.
	w.status.Store(0)
	w.hang.Store(true)
	var worst time.Duration
	for i := range 200 {
		td := spans("payment-service", "charge", "card", 10, 10, byte(i))
		start := time.Now()
		feed(e, td)
		worst = max(worst, time.Since(start))
	}
	// A Commit that waited for the hanging delivery would wait out its timeout (200 ms);
	// the bound sits below that, well above a loaded machine's scheduling delays.
	if worst >= cfg.Timeout*3/4 {
		t.Errorf("slowest Commit while the webhook hangs took %v: it waited for the delivery (timeout %v)", worst, cfg.Timeout)
	}
	// Recovery: the alert arrives, as it is now.
	w.hang.Store(false)
	waitFor(t, "delivery after recovery", 5*time.Second, func() bool {
		d := e.Status().Webhook
		return len(w.received()) > 0 && d.Delivered > 0
	})
	if got := w.received()[0][0].Labels["alertname"]; got != "CardDeclinesHigh" {
		t.Errorf("delivered %q", got)
	}
	if d := e.Status().Webhook; d.ConsecutiveFailures != 0 || d.Delivered == 0 {
		t.Errorf("delivery status after recovery = %+v", d)
	}
}

type memStore struct {
	mu  sync.Mutex
	doc []byte
}

func (m *memStore) PutAlertState(_ context.Context, doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doc = slices.Clone(doc)
	return nil
}

func (m *memStore) GetAlertState(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc, nil
}

// TestStateSurvivesRestart: a firing alert is firing again after a restart (and is
// not resolved before its window has passed); the firing history is kept.
func TestStateSurvivesRestart(t *testing.T) {
	st := &memStore{}
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	rules := mustRules(t, issueRules)
	e, err := NewEngine(DefaultConfig(), rules, Settings{Store: st, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	feed(e, spans("payment-service", "charge", "card", 2, 2, 10))
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, err = NewEngine(DefaultConfig(), rules, Settings{Store: st, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	c.advance(30 * time.Second)
	e.EvaluateAll()
	s := stateOf(e, "CardDeclinesHigh")
	if s.State != StateFiring || len(s.TraceIDs) != 2 || len(e.Status().Firings) != 1 {
		t.Fatalf("after restart: %+v, firings %v", s, e.Status().Firings)
	}
	c.advance(31 * time.Second)
	e.EvaluateAll()
	if s := stateOf(e, "CardDeclinesHigh"); s.State != StateResolved {
		t.Fatalf("one window after restart: %s, want resolved", s.State)
	}
}
