package ingest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// memoryRefuseShare is the share of memory_limit_mib past which new requests are
// refused. The Go heap aims at 40% of the limit (cmd/spoor sets the soft limit), so
// memory this high means in-flight data or off-heap memory is crowding the limit.
const memoryRefuseShare = 0.8

// inflightSpansPerMiB sizes the default in-flight bound from the memory limit. The
// store reaches its sustained rate with about 4,000 spans in flight (measured: 8
// senders of 512-span requests); 40 per MiB (20,480 at 512 MiB) leaves it five times
// that, and keeps in-flight data, at about 2 KiB a span (request bytes, decoded span,
// the store's encoding), under a tenth of the budget.
const inflightSpansPerMiB = 40

// admission bounds the ingest path: at most maxSpans spans accepted and not yet stored,
// and nothing new while the process's memory is past its threshold. A refusal is
// retryable: gRPC RESOURCE_EXHAUSTED with RetryInfo, HTTP 429 with Retry-After — which
// the OTel SDKs and the collector's exporters retry after the delay.
type admission struct {
	maxSpans    int64
	memLimit    int64 // bytes past which requests are refused; 0 = no memory check
	retryAfter  time.Duration
	inflight    atomic.Int64
	memory      atomic.Int64 // last measured anonymous memory
	readMemory  func() (int64, bool)
	stop        chan struct{}
	stopped     sync.WaitGroup
	startOnce   sync.Once
	shutdownMux sync.Mutex
}

// overloadReason names why a request was refused, for metrics and for the sender.
type overloadReason string

const (
	overloadNone     overloadReason = ""
	overloadMemory   overloadReason = "memory"
	overloadInflight overloadReason = "inflight"
)

func newAdmission(memLimitMiB, maxSpans int64, retryAfter time.Duration) *admission {
	a := &admission{retryAfter: retryAfter, readMemory: anonMemoryBytes}
	if memLimitMiB > 0 {
		a.memLimit = int64(float64(memLimitMiB<<20) * memoryRefuseShare)
		if maxSpans == 0 {
			maxSpans = memLimitMiB * inflightSpansPerMiB
		}
	}
	a.maxSpans = maxSpans
	return a
}

// start measures memory every 50 ms until shutdown.
func (a *admission) start() {
	if a.memLimit == 0 {
		return
	}
	a.startOnce.Do(func() {
		a.sample()
		a.stop = make(chan struct{})
		a.stopped.Add(1)
		go func() {
			defer a.stopped.Done()
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-a.stop:
					return
				case <-t.C:
					a.sample()
				}
			}
		}()
	})
}

func (a *admission) sample() {
	if m, ok := a.readMemory(); ok {
		a.memory.Store(m)
	}
}

// shutdown stops the memory sampler. Safe without start and safe twice.
func (a *admission) shutdown() {
	a.shutdownMux.Lock()
	defer a.shutdownMux.Unlock()
	if a.stop != nil {
		close(a.stop)
		a.stopped.Wait()
		a.stop = nil
	}
}

// admit takes n spans in, or says why not. A request larger than the whole bound is
// admitted when nothing else is in flight, so that it is slow rather than never taken.
func (a *admission) admit(n int) overloadReason {
	if a.memLimit > 0 && a.memory.Load() > a.memLimit {
		return overloadMemory
	}
	if a.maxSpans <= 0 {
		a.inflight.Add(int64(n))
		return overloadNone
	}
	if now := a.inflight.Add(int64(n)); now > a.maxSpans && now != int64(n) {
		a.inflight.Add(-int64(n))
		return overloadInflight
	}
	return overloadNone
}

func (a *admission) release(n int) { a.inflight.Add(-int64(n)) }

// full tells, before a request is read, whether admit would refuse any request now:
// memory past the threshold, or the in-flight bound already reached. The door uses
// it to refuse without reading or decoding the body, which is what keeps refusals
// cheap under overload.
func (a *admission) full() overloadReason {
	if a.memLimit > 0 && a.memory.Load() > a.memLimit {
		return overloadMemory
	}
	// Three quarters: requests the door lets in are decoded before admit sees them, and
	// while they are decoded others finish; refusing at the door a little early spares
	// decoding requests that admit would refuse anyway.
	if a.maxSpans > 0 && a.inflight.Load() >= a.maxSpans*3/4 {
		return overloadInflight
	}
	return overloadNone
}

// refusal is the error a refused request gets: RESOURCE_EXHAUSTED with RetryInfo
// (the OTLP receivers turn it into HTTP 429 with Retry-After).
func (a *admission) refusal(reason overloadReason, spans int) error {
	var msg string
	switch reason {
	case overloadMemory:
		msg = fmt.Sprintf("spoor is over its memory threshold (%d MiB in use, threshold %d MiB): %d spans refused, retry after %v",
			a.memory.Load()>>20, a.memLimit>>20, spans, a.retryAfter)
	default:
		msg = fmt.Sprintf("spoor has %d spans waiting to be stored (bound %d): %d spans refused, retry after %v",
			a.inflight.Load(), a.maxSpans, spans, a.retryAfter)
	}
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(a.retryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}
