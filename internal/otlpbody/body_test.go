package otlpbody

import (
	"context"
	"testing"
)

func TestFacts(t *testing.T) {
	ctx := context.Background()
	Note(ctx, NoSamplingPriority) // no request: nothing to note it on
	if f := Facts(ctx); f != 0 {
		t.Fatalf("a context without a request has facts %b", f)
	}
	ctx = NewContext(ctx, []byte{1}, nil)
	if f := Facts(ctx); f != 0 {
		t.Fatalf("a new request has facts %b before any was noted", f)
	}
	Note(ctx, NoSamplingPriority)
	if f := Facts(ctx); f&NoSamplingPriority == 0 {
		t.Fatalf("facts %b after noting NoSamplingPriority", f)
	}
	// Another request's context has its own.
	if f := Facts(NewContext(context.Background(), []byte{1}, nil)); f != 0 {
		t.Fatalf("facts %b leaked to another request", f)
	}
}
