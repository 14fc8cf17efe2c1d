package ingest

import (
	"context"
	"sync"
)

// rejection carries, from the pipeline back to the HTTP door, why a request was
// refused: the Zipkin receiver answers every refused request with a bare "Bad Request",
// and a sender deserves to know what was wrong.
type rejection struct {
	mu     sync.Mutex
	reason string
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

func (r *rejection) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}
