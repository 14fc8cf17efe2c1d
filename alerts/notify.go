package alerts

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

func hexDecode(dst []byte, s string) (int, error) { return hex.Decode(dst, []byte(s)) }

// notifier delivers the latest form of every alert to the webhook. It holds state,
// not a queue: an alert updated ten times while the webhook is down is sent once,
// as it is now, when the webhook comes back.
type notifier struct {
	cfg    Config
	log    *zap.Logger
	client *http.Client

	mu     sync.Mutex
	alerts map[string]*outAlert
	d      Delivery

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	sent, failed metric.Int64Counter
}

type outAlert struct {
	a        Alert
	resolved bool
	version  uint64 // bumped by every set
	sentVer  uint64 // the version last delivered
	lastSent time.Time
}

// Delivery describes the webhook's health, for the query API.
type Delivery struct {
	URL                 string    `json:"url"`
	Delivered           int64     `json:"delivered"`
	Failed              int64     `json:"failed"`
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	BreakerOpenUntil    time.Time `json:"breakerOpenUntil,omitzero"`
	LastError           string    `json:"lastError,omitempty"`
	LastDelivery        time.Time `json:"lastDelivery,omitzero"`
	Pending             int       `json:"pending"`
}

func newNotifier(cfg Config, set Settings) (*notifier, error) {
	n := &notifier{cfg: cfg, log: set.Logger, client: &http.Client{Timeout: cfg.Timeout},
		alerts: map[string]*outAlert{}, wake: make(chan struct{}, 1), d: Delivery{URL: cfg.Webhook}}
	if set.MeterProvider != nil {
		m := set.MeterProvider.Meter("github.com/spoortrace/spoor/alerts")
		var err error
		if n.sent, err = m.Int64Counter("spoor_alert_notifications_delivered_total",
			metric.WithDescription("Webhook POSTs of alert notifications that the webhook accepted (2xx).")); err != nil {
			return nil, fmt.Errorf("create alert metrics: %w", err)
		}
		if n.failed, err = m.Int64Counter("spoor_alert_notifications_failed_total",
			metric.WithDescription("Webhook POSTs of alert notifications that failed (error, timeout or non-2xx); they are retried.")); err != nil {
			return nil, fmt.Errorf("create alert metrics: %w", err)
		}
	}
	return n, nil
}

// set records an alert's current form; the delivery goroutine sends it.
func (n *notifier) set(key string, a Alert, resolved bool) {
	n.mu.Lock()
	o, ok := n.alerts[key]
	if !ok {
		o = &outAlert{}
		n.alerts[key] = o
	}
	changed := !ok || o.resolved != resolved || !o.a.StartsAt.Equal(a.StartsAt)
	o.a, o.resolved = a, resolved
	if changed {
		o.version++ // a state change is sent now; a refresh waits for the resend
	}
	n.mu.Unlock()
	if changed {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
}

func (n *notifier) start() {
	n.stop, n.done = make(chan struct{}), make(chan struct{})
	go n.run()
}

func (n *notifier) shutdown(ctx context.Context) {
	close(n.stop)
	<-n.done
	// One last attempt for what is pending (a resolved notice at shutdown), bounded.
	if batch, vers := n.due(time.Now(), true); len(batch) > 0 {
		ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
		defer cancel()
		if err := n.post(ctx, batch); err == nil {
			n.delivered(time.Now(), batch, vers)
		}
	}
}

func (n *notifier) run() {
	defer close(n.done)
	failures := 0
	var retryAt time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		next := now.Add(n.cfg.ResendInterval)
		if now.Before(retryAt) {
			next = retryAt
		} else if batch, vers := n.due(now, false); len(batch) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
			err := n.post(ctx, batch)
			cancel()
			now = time.Now()
			if err != nil {
				failures++
				backoff := n.cfg.InitialBackoff << min(failures-1, 20)
				backoff = min(backoff, n.cfg.MaxBackoff)
				backoff = backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1)) // jitter
				retryAt = now.Add(backoff)
				n.mu.Lock()
				n.d.Failed++
				n.d.ConsecutiveFailures = failures
				n.d.LastError = err.Error()
				if failures >= n.cfg.BreakerFailures {
					// The circuit opens: no attempt until the cooldown ends, then one probe.
					retryAt = now.Add(n.cfg.BreakerCooldown)
					n.d.BreakerOpenUntil = retryAt
				}
				n.mu.Unlock()
				if n.failed != nil {
					n.failed.Add(context.Background(), 1)
				}
				n.log.Warn("alert webhook delivery failed; will retry", zap.Error(err),
					zap.Int("consecutive_failures", failures), zap.Time("retry_at", retryAt))
				next = retryAt
			} else {
				failures, retryAt = 0, time.Time{}
				n.delivered(now, batch, vers)
				if n.sent != nil {
					n.sent.Add(context.Background(), 1)
				}
				continue // more may have become due meanwhile
			}
		}
		if nd := n.nextResend(); !nd.IsZero() && nd.Before(next) && !now.Before(retryAt) {
			next = nd
		}
		timer.Reset(max(time.Until(next), time.Millisecond))
		select {
		case <-n.stop:
			return
		case <-timer.C:
		case <-n.wake:
		}
	}
}

// due returns the alerts to send now: changed since last delivered, or firing and
// not sent for a resend interval. all returns every undelivered change.
func (n *notifier) due(now time.Time, all bool) ([]Alert, map[string]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var batch []Alert
	vers := map[string]uint64{}
	keys := make([]string, 0, len(n.alerts))
	for k := range n.alerts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := n.alerts[k]
		changed := o.version != o.sentVer
		resend := !o.resolved && now.Sub(o.lastSent) >= n.cfg.ResendInterval
		if changed || (resend && !all) {
			batch = append(batch, o.a)
			vers[k] = o.version
		}
	}
	n.d.Pending = len(batch)
	return batch, vers
}

func (n *notifier) nextResend() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	var next time.Time
	for _, o := range n.alerts {
		if o.resolved {
			continue
		}
		t := o.lastSent.Add(n.cfg.ResendInterval)
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

func (n *notifier) delivered(now time.Time, batch []Alert, vers map[string]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, v := range vers {
		o := n.alerts[k]
		if o == nil {
			continue
		}
		o.sentVer = max(o.sentVer, v)
		o.lastSent = now
		if o.resolved && o.sentVer == o.version {
			delete(n.alerts, k) // the resolved notice is out: nothing more to say
		}
	}
	n.d.Delivered += int64(len(batch))
	n.d.ConsecutiveFailures = 0
	n.d.BreakerOpenUntil = time.Time{}
	n.d.LastError = ""
	n.d.LastDelivery = now
	n.d.Pending = 0
}

func (n *notifier) post(ctx context.Context, batch []Alert) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alert webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", n.cfg.Webhook, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", n.cfg.Webhook, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func (n *notifier) delivery() Delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.d
}
