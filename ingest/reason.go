package ingest

import (
	"context"
	"sync"
	"time"
)

// rejection carries, from the pipeline back to the HTTP door, why a request was
// refused: the Zipkin receiver answers every refused request with a bare "Bad Request",
// and a sender deserves to know what was wrong.
type rejection struct {
	mu     sync.Mutex
	reason string
	// retryAfter is set when the refusal was for overload: the sender should retry.
	retryAfter time.Duration
	// seen is set once the request's spans reached the pipeline: a failure without it
	// happened while the receiver decoded the body.
	seen bool
}

type rejectionKey struct{}

func withRejection(ctx context.Context) (context.Context, *rejection) {
	r := &rejection{}
	return context.WithValue(ctx, rejectionKey{}, r), r
}

// recordRejection notes why the request of ctx was refused, if the request came
// through the door middleware.
func recordRejection(ctx context.Context, reason string) {
	if r, ok := ctx.Value(rejectionKey{}).(*rejection); ok {
		r.mu.Lock()
		if r.reason == "" {
			r.reason = reason
		}
		r.mu.Unlock()
	}
}

// recordOverload notes that the request of ctx was refused for overload, with the
// delay the sender should wait.
func recordOverload(ctx context.Context, reason string, retryAfter time.Duration) {
	if r, ok := ctx.Value(rejectionKey{}).(*rejection); ok {
		r.mu.Lock()
		if r.reason == "" {
			r.reason, r.retryAfter = reason, retryAfter
		}
		r.mu.Unlock()
	}
}

// markSeen notes that the request of ctx was decoded and reached the pipeline.
func markSeen(ctx context.Context) {
	if r, ok := ctx.Value(rejectionKey{}).(*rejection); ok {
		r.mu.Lock()
		r.seen = true
		r.mu.Unlock()
	}
}

func (r *rejection) decoded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

func (r *rejection) overload() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retryAfter
}

func (r *rejection) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}
