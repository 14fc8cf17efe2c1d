package demo

import (
	"sync"
	"sync/atomic"
)

// Stats counts what one Run sent. Span counts are spans the receiver
// acknowledged; spans in a failed export are counted in FailedSpans instead.
type Stats struct {
	// Traces is the number of checkout traces generated.
	Traces int64

	// Spans acknowledged, by transport.
	OTLPGRPCSpans int64
	OTLPHTTPSpans int64
	ZipkinSpans   int64

	// Errors is the number of export requests that failed (transport error
	// or a non-2xx answer); FailedSpans the spans they carried. zipkin-go
	// retries a batch after a transport error, so a span may be counted here
	// and later as acknowledged.
	Errors      int64
	FailedSpans int64

	// How many traces played each failure.
	CardDeclines          int64 // the processor declined the card
	TimeoutRetries        int64 // inventory call timed out and was retried
	FraudFailures         int64 // fraud-service answered 503 during an outage
	CircuitOpenRejections int64 // payment-service failed fast, breaker open
	SagaCompensations     int64 // ledger append failed; refund + CancelOrder
}

// Spans is the total number of acknowledged spans.
func (s Stats) Spans() int64 { return s.OTLPGRPCSpans + s.OTLPHTTPSpans + s.ZipkinSpans }

type protocol int

const (
	protoOTLPGRPC protocol = iota
	protoOTLPHTTP
	protoZipkin
)

func (p protocol) String() string {
	switch p {
	case protoOTLPGRPC:
		return "otlp/grpc"
	case protoOTLPHTTP:
		return "otlp/http"
	case protoZipkin:
		return "zipkin"
	}
	return "unknown"
}

// counters is shared by exporters running on their own goroutines.
type counters struct {
	traces      atomic.Int64
	spans       [3]atomic.Int64
	errors      atomic.Int64
	failedSpans atomic.Int64

	declines, retries, fraudFailures, circuitOpen, sagas atomic.Int64

	mu       sync.Mutex
	firstErr error
}

func (c *counters) exported(p protocol, n int, err error) {
	if err == nil {
		c.spans[p].Add(int64(n))
		return
	}
	c.errors.Add(1)
	c.failedSpans.Add(int64(n))
	c.mu.Lock()
	if c.firstErr == nil {
		c.firstErr = err
	}
	c.mu.Unlock()
}

func (c *counters) firstError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.firstErr
}

func (c *counters) snapshot() Stats {
	return Stats{
		Traces:                c.traces.Load(),
		OTLPGRPCSpans:         c.spans[protoOTLPGRPC].Load(),
		OTLPHTTPSpans:         c.spans[protoOTLPHTTP].Load(),
		ZipkinSpans:           c.spans[protoZipkin].Load(),
		Errors:                c.errors.Load(),
		FailedSpans:           c.failedSpans.Load(),
		CardDeclines:          c.declines.Load(),
		TimeoutRetries:        c.retries.Load(),
		FraudFailures:         c.fraudFailures.Load(),
		CircuitOpenRejections: c.circuitOpen.Load(),
		SagaCompensations:     c.sagas.Load(),
	}
}
