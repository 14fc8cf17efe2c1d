package storage

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ErrTraceNotFound is returned by Reader.GetTrace when no span of the trace is stored.
var ErrTraceNotFound = errors.New("trace not found")

// Writer stores spans.
//
// Contract:
//   - WriteTraces is durable: when it returns nil, every span of td has been committed to
//     disk and is visible to every Reader of the same store, also after a restart or a crash
//     of the process. Spoor acknowledges spans to their sender only after that.
//   - WriteTraces is idempotent: writing the same spans again (a sender's retry) leaves the
//     stored trace as if they had been written once.
//   - A batch is atomic for readers: a reader sees all of a WriteTraces call's spans of a
//     trace, or none of them.
//   - td is read-only for the duration of the call; the store keeps no reference to it
//     after the call returns.
//   - Spans with an all-zero trace ID are invalid input: WriteTraces rejects the whole batch
//     with an error for which IsInvalidInput reports true, and stores nothing.
type Writer interface {
	WriteTraces(ctx context.Context, td ptrace.Traces) error
}

// Reader answers queries over stored spans. Every method is safe for concurrent use,
// also concurrently with writes.
type Reader interface {
	// GetTrace returns every stored span of the trace, or ErrTraceNotFound.
	// Spans written more than once are returned once.
	GetTrace(ctx context.Context, traceID pcommon.TraceID) (ptrace.Traces, error)

	// GetServices returns the names of every service (resource attribute service.name)
	// that has stored spans, sorted. It never returns nil.
	GetServices(ctx context.Context) ([]string, error)

	// GetOperations returns the span names of a service, with their span kind, sorted by
	// name then kind. When q.SpanKind is set, only operations of that kind are returned.
	// It never returns nil.
	GetOperations(ctx context.Context, q OperationQuery) ([]Operation, error)

	// FindTraces returns the traces that match q, newest first (by trace start time,
	// then by trace ID), at most q.Limit of them.
	FindTraces(ctx context.Context, q TraceQuery) ([]ptrace.Traces, error)

	// FindTraceIDs is FindTraces without loading the traces: the IDs, in the same order.
	FindTraceIDs(ctx context.Context, q TraceQuery) ([]pcommon.TraceID, error)
}

// OperationQuery selects the operations of one service.
type OperationQuery struct {
	ServiceName string
	// SpanKind is one of "server", "client", "producer", "consumer", "internal",
	// "unspecified", or empty for all kinds.
	SpanKind string
}

// Operation is a span name seen for a service, with the kind of the spans that carry it.
type Operation struct {
	Name string
	// SpanKind is one of "server", "client", "producer", "consumer", "internal" or
	// "unspecified".
	SpanKind string
}

// TraceQuery selects traces. A trace matches when at least one of its spans satisfies
// every condition that is set (the semantics of Jaeger's trace store):
//   - ServiceName: the span's resource has service.name equal to it;
//   - OperationName: the span's name equals it;
//   - Attributes: for every key, the span, its resource, its scope, one of its events or
//     one of its links has an attribute with that key whose value, written as a string
//     (pcommon.Value.AsString), equals the wanted value;
//   - StartTimeMin/StartTimeMax: the span starts within [min, max] (zero = unbounded);
//   - DurationMin/DurationMax: the span's duration is within [min, max] (zero = unbounded).
type TraceQuery struct {
	ServiceName   string
	OperationName string
	Attributes    map[string]string
	StartTimeMin  time.Time
	StartTimeMax  time.Time
	DurationMin   time.Duration
	DurationMax   time.Duration
	// Limit is the most traces returned; zero or less means DefaultLimit.
	Limit int
}

// DefaultLimit is the number of traces a search returns when its query sets no limit.
const DefaultLimit = 100

// InvalidInputError marks input the store refuses because it is wrong, not because the
// store failed: retrying it cannot succeed.
type InvalidInputError struct{ Reason string }

func (e *InvalidInputError) Error() string { return "invalid input: " + e.Reason }

// IsInvalidInput reports whether err (or an error it wraps) is an InvalidInputError.
func IsInvalidInput(err error) bool {
	var e *InvalidInputError
	return errors.As(err, &e)
}
