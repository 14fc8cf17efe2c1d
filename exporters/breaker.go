package exporters

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// State is a circuit breaker's state.
type State int32

// The three states, in the order of the spoor_forward_breaker_state gauge's values.
const (
	// Closed: requests go to the destination; consecutive failures are counted.
	Closed State = iota
	// HalfOpen: the open period is over; one probe request at a time goes through.
	HalfOpen
	// Open: requests fail at once without reaching the destination.
	Open
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// ErrOpen is returned, without contacting the destination, while the breaker is open
// (or half-open with its probe in flight). It is retryable: the request stays in the
// exporter's queue and is sent after the destination answers a probe.
var ErrOpen = errors.New("circuit breaker open: destination failing, request not sent")

// breaker is the state machine, without I/O. After threshold consecutive failures it
// opens for openFor; then it lets one probe through (half-open): success closes it,
// failure opens it again for twice as long, up to maxOpen.
type breaker struct {
	threshold int
	minOpen   time.Duration
	maxOpen   time.Duration
	now       func() time.Time
	// onChange is called, with the lock held, on every state change.
	onChange func(from, to State)

	mu        sync.Mutex
	state     State
	failures  int
	openFor   time.Duration
	openUntil time.Time
	probing   bool
}

func newBreaker(threshold int, minOpen, maxOpen time.Duration, now func() time.Time, onChange func(from, to State)) *breaker {
	return &breaker{threshold: threshold, minOpen: minOpen, maxOpen: maxOpen, now: now, onChange: onChange, openFor: minOpen}
}

// ticket is what allow hands out for one request, to be given back to done.
type ticket struct{ probe bool }

// allow reports whether a request may go to the destination now. Every allowed request
// must be followed by one call to done with the ticket.
func (b *breaker) allow() (ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Closed:
		return ticket{}, true
	case Open:
		if b.now().Before(b.openUntil) {
			return ticket{}, false
		}
		b.set(HalfOpen)
		fallthrough
	default: // HalfOpen
		if b.probing {
			return ticket{}, false
		}
		b.probing = true
		return ticket{probe: true}, true
	}
}

// done records the outcome of an allowed request. ok is false when the destination
// failed (no connection, timeout, 5xx, throttling), true when it answered, even with a
// refusal of the data: a 400 says the destination is up.
func (b *breaker) done(t ticket, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !t.probe && b.state != Closed {
		// A request allowed before the breaker opened: its outcome changes nothing.
		return
	}
	switch b.state {
	case Closed:
		if ok {
			b.failures = 0
			return
		}
		b.failures++
		if b.failures >= b.threshold {
			b.open(b.minOpen)
		}
	case HalfOpen:
		b.probing = false
		if ok {
			b.failures = 0
			b.openFor = b.minOpen
			b.set(Closed)
			return
		}
		b.open(min(2*b.openFor, b.maxOpen))
	}
}

func (b *breaker) open(d time.Duration) {
	b.openFor = d
	b.openUntil = b.now().Add(d)
	b.failures = 0
	b.set(Open)
}

func (b *breaker) set(s State) {
	if b.state == s {
		return
	}
	from := b.state
	b.state = s
	if b.onChange != nil {
		b.onChange(from, s)
	}
}

// State returns the current state.
func (b *breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
