package exporters

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensiontest"
)

// TestBreakerStates walks the state machine: closed → open after the threshold,
// fail-fast while open, one probe when half-open, back to open (for twice as long) on a
// failed probe, closed on a good one.
func TestBreakerStates(t *testing.T) {
	var changes []string
	b := newBreaker(3, 40*time.Millisecond, 100*time.Millisecond, time.Now, func(from, to State) {
		changes = append(changes, from.String()+">"+to.String())
	})
	fail := func() {
		t.Helper()
		tk, ok := b.allow()
		if !ok {
			t.Fatalf("request refused in state %v", b.State())
		}
		b.done(tk, false)
	}
	fail()
	fail()
	if b.State() != Closed {
		t.Fatalf("open after 2 failures, threshold 3")
	}
	fail()
	if b.State() != Open {
		t.Fatalf("state %v after 3 failures, want open", b.State())
	}
	if _, ok := b.allow(); ok {
		t.Fatal("open breaker let a request through")
	}
	time.Sleep(50 * time.Millisecond)
	probe, ok := b.allow()
	if !ok || b.State() != HalfOpen {
		t.Fatalf("after the open period: allowed %v, state %v; want a probe, half-open", ok, b.State())
	}
	if _, ok := b.allow(); ok {
		t.Fatal("half-open breaker let a second request through while the probe is out")
	}
	b.done(probe, false)
	if b.State() != Open {
		t.Fatalf("failed probe left state %v, want open", b.State())
	}
	time.Sleep(50 * time.Millisecond)
	if _, ok := b.allow(); ok {
		t.Fatal("after a failed probe the open period must double (80ms), but a request passed after 50ms")
	}
	time.Sleep(40 * time.Millisecond)
	probe, ok = b.allow()
	if !ok {
		t.Fatal("no probe after the doubled open period")
	}
	b.done(probe, true)
	if b.State() != Closed {
		t.Fatalf("good probe left state %v, want closed", b.State())
	}
	want := []string{"closed>open", "open>half_open", "half_open>open", "open>half_open", "half_open>closed"}
	if len(changes) != len(want) {
		t.Fatalf("transitions %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("transitions %v, want %v", changes, want)
		}
	}
}

// TestBreakerStaleOutcome: a request allowed while closed that ends after the breaker
// opened must not decide the half-open probe's outcome.
func TestBreakerStaleOutcome(t *testing.T) {
	b := newBreaker(1, 10*time.Millisecond, 10*time.Millisecond, time.Now, nil)
	slow, _ := b.allow()
	tk, _ := b.allow()
	b.done(tk, false) // opens
	time.Sleep(15 * time.Millisecond)
	probe, ok := b.allow()
	if !ok {
		t.Fatal("no probe")
	}
	b.done(slow, true)
	if b.State() != HalfOpen {
		t.Fatalf("a stale success moved the breaker to %v", b.State())
	}
	b.done(probe, false)
	if b.State() != Open {
		t.Fatalf("state %v after failed probe", b.State())
	}
}

// TestBreakerHTTP runs the middleware's round tripper against a real destination on
// loopback: while the destination is down the breaker opens, and then requests fail at
// once without a connection attempt; when the destination is back, a probe closes it.
func TestBreakerHTTP(t *testing.T) {
	f := NewBreakerFactory()
	cfg := f.CreateDefaultConfig().(*BreakerConfig)
	cfg.OpenDuration, cfg.MaxOpenDuration = 100*time.Millisecond, 100*time.Millisecond
	set := extensiontest.NewNopSettings(BreakerType)
	set.ID = component.MustNewIDWithName("spoor_breaker", "test")
	ext, err := f.Create(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	be := ext.(*BreakerExtension)
	t.Cleanup(func() { _ = be.Shutdown(context.Background()); _ = be.Shutdown(context.Background()) })

	// A port with nothing listening: connections are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var accepted atomic.Int64
	counting := &countingTransport{next: http.DefaultTransport.(*http.Transport).Clone(), n: &accepted}
	wrap, err := be.GetHTTPRoundTripper(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := wrap(context.Background(), counting)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: rt, Timeout: 2 * time.Second}
	get := func() error {
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for i := 0; i < 3; i++ {
		if err := get(); err == nil || errors.Is(err, ErrOpen) {
			t.Fatalf("request %d to a dead destination: %v, want a connection error", i, err)
		}
	}
	if be.State() != Open {
		t.Fatalf("state %v after 3 refused connections", be.State())
	}
	before := accepted.Load()
	for i := 0; i < 50; i++ {
		if err := get(); !errors.Is(err, ErrOpen) {
			t.Fatalf("request while open: %v, want ErrOpen", err)
		}
	}
	if got := accepted.Load() - before; got != 0 {
		t.Fatalf("open breaker passed %d requests to the transport", got)
	}

	// The destination comes back.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	time.Sleep(150 * time.Millisecond)
	if err := get(); err != nil {
		t.Fatalf("probe to the restored destination: %v", err)
	}
	if be.State() != Closed {
		t.Fatalf("state %v after a good probe, want closed", be.State())
	}
}

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}
