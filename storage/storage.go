package storage

import (
	"context"
	"errors"
	"regexp"
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

// EncodedWriter is a Writer that can be handed td together with raw, its encoding as an
// OTLP TracesData protobuf (an ExportTraceServiceRequest's bytes are one), and store
// those bytes instead of encoding td again. The Writer contract holds; raw, like td, is
// read-only and not kept after the call. The caller vouches that raw decodes to td
// exactly (storageexporter checks it).
type EncodedWriter interface {
	WriteTracesEncoded(ctx context.Context, td ptrace.Traces, raw []byte) error
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
// every span-level condition that is set (the semantics of Jaeger's trace store), and the
// trace as a whole satisfies every trace-level condition that is set.
//
// Span-level conditions, all on the same span:
//   - ServiceName: the span's resource has service.name equal to it;
//   - OperationName: the span's name equals it;
//   - Attributes: for every key, the span, its resource, its scope, one of its events or
//     one of its links has an attribute with that key whose value, written as a string
//     (pcommon.Value.AsString), equals the wanted value;
//   - AttributeFilters: every filter holds (see AttributeFilter), looked up in the same
//     places as Attributes;
//   - StartTimeMin/StartTimeMax: the span starts within [min, max] (zero = unbounded);
//   - DurationMin/DurationMax: the span's duration is within [min, max] (zero = unbounded);
//   - ErrorsOnly: the span's status code is Error. With no other span-level condition
//     this is Jaeger users' "error traces": traces with at least one error span. With
//     others, the error span must be one that satisfies them all (ServiceName "payments"
//     and ErrorsOnly finds traces in which a payments span failed, not traces in which
//     payments took part and something else failed; TraceErrorsOnly is that).
//   - Status: the span's status code is the one named (StatusOK, StatusUnset, or
//     StatusError, which is ErrorsOnly); AnyStatus (zero) sets no condition. ErrorsOnly
//     with Status OK or Unset is invalid input.
//
// Trace-level conditions, on the whole trace, independent of which span matched above:
//   - TraceDurationMin/TraceDurationMax: the trace's duration, from its earliest span
//     start to its latest span end, is within [min, max] (zero = unbounded). This is not
//     a span's duration: a 2 s trace made of 10 ms spans has trace duration 2 s;
//   - TraceErrorsOnly: at least one span of the trace, any span, has status Error.
//
// Results are ordered newest first: by trace start (earliest span start) descending,
// then by trace ID ascending (bytewise), so that equal starts have a stable order.
type TraceQuery struct {
	ServiceName      string
	OperationName    string
	Attributes       map[string]string
	AttributeFilters []AttributeFilter
	StartTimeMin     time.Time
	StartTimeMax     time.Time
	DurationMin      time.Duration
	DurationMax      time.Duration
	ErrorsOnly       bool
	Status           StatusCondition

	TraceDurationMin time.Duration
	TraceDurationMax time.Duration
	TraceErrorsOnly  bool

	// Limit is the most traces returned; zero or less means DefaultLimit.
	Limit int
	// ScanLimit, above zero, bounds the work of one SearchTraces call: once it has
	// checked that many traces against their spans (conditions no index decides), it
	// returns the matches it can already place — fewer than Limit, possibly none — with
	// a NextCursor that goes on from there. Zero: no bound. FindTraces and FindTraceIDs
	// ignore it.
	ScanLimit int
	// Cursor, when set, is a SearchResult.NextCursor of an earlier search with the same
	// conditions: the search continues after the last trace that search returned (see
	// Searcher). Malformed cursors are invalid input.
	Cursor string
}

// StatusCondition is a span-level condition on the OTLP status code (TraceQuery.Status).
type StatusCondition uint8

const (
	AnyStatus StatusCondition = iota
	// StatusError is the same condition as ErrorsOnly.
	StatusError
	StatusOK
	StatusUnset
)

// AttributeFilter is one attribute condition on a span. The attribute matches a value
// when the span, its resource, its scope, one of its events or one of its links has an
// attribute Key whose value, written as a string (pcommon.Value.AsString), equals it —
// or, with Match set, when Match matches that string (Match.MatchString: anywhere in it
// unless anchored).
//   - Values set, Negate false: the attribute matches at least one of Values (OR);
//   - Values set, Negate true: the attribute matches none of Values in any of those
//     places; a span without the attribute at all satisfies it;
//   - Match set, Negate false: the attribute has a value Match matches;
//   - Match set, Negate true: no value of the attribute in any of those places matches
//     Match; a span without the attribute at all satisfies it;
//   - Values empty, Match nil, Negate false: the attribute is present, with any value;
//   - Values empty, Match nil, Negate true: the attribute is absent from all of those places.
//
// Values and Match together are invalid input. A store may decide a Match filter from an
// index (for instance as the OR of the values it knows the key to take), but the answer
// must be the one checking every span would give.
type AttributeFilter struct {
	Key    string
	Values []string
	Match  *regexp.Regexp
	Negate bool
}

// Searcher is a Reader that also pages through search results and returns trace
// summaries. Stores that can offer it implement it; callers find it by type assertion.
//
// SearchTraces returns at most q.Limit matches of q, newest first, with their summaries,
// and the spans of each trace when depth is WithSpans. NextCursor is set when the page is
// full, or when q.ScanLimit cut the page short; passing it back as q.Cursor (with the same conditions; Limit may change) returns
// the next page, and following it to the end returns every matching trace exactly once.
// Pages after the first answer from the store as it was when the first page was read (a
// snapshot): traces written, or spans added to stored traces, after the first page do
// not appear in later pages, so nothing is returned twice or skipped because of them. A
// trace that expires (retention) between pages is not returned.
type Searcher interface {
	SearchTraces(ctx context.Context, q TraceQuery, depth SearchDepth) (SearchResult, error)
}

// SearchDepth says how much of each matching trace SearchTraces returns.
type SearchDepth uint8

const (
	// SummariesOnly returns summaries, never loading the spans it does not need to
	// decide the match.
	SummariesOnly SearchDepth = iota
	// WithSpans also returns every span of each trace, read in the same snapshot.
	WithSpans
)

// SearchResult is one page of a search.
type SearchResult struct {
	// Summaries has one entry per matching trace, in result order; never nil.
	Summaries []TraceSummary
	// Traces, with WithSpans only, holds the spans of Summaries[i]'s trace at index i.
	Traces []ptrace.Traces
	// NextCursor continues the search after this page; empty when the page was not full
	// (nothing more matches). A full page may be followed by an empty one.
	NextCursor string
}

// TraceCounter estimates how many traces match a query without reading them all: the
// total a search UI shows beside its first page. Stores that can offer it implement it,
// from their search index; callers find it by type assertion.
type TraceCounter interface {
	// EstimateTraces counts the traces that match q (q.Limit and q.Cursor are ignored)
	// in the store as it is now. When the estimate is Exact, Count is the number of
	// traces that paging through the search to its end would return; otherwise Count is
	// an upper bound, never below that number (a conservative estimate).
	EstimateTraces(ctx context.Context, q TraceQuery) (TraceEstimate, error)
}

// TraceEstimate is the answer of TraceCounter.EstimateTraces.
type TraceEstimate struct {
	Count int64
	Exact bool
}

// SummaryReader returns the summary of one stored trace.
type SummaryReader interface {
	// GetTraceSummary returns the trace's summary, or ErrTraceNotFound.
	GetTraceSummary(ctx context.Context, traceID pcommon.TraceID) (TraceSummary, error)
}

// TraceSummary describes a trace without its spans. Counts are of stored spans: a
// sender's retry that re-split a batch can make them count a span twice (an upper
// bound), never less.
type TraceSummary struct {
	TraceID pcommon.TraceID
	// HasRoot reports whether a root span (no parent) is stored; RootService and
	// RootOperation are its service and name, empty when there is none. With several
	// roots, the earliest wins.
	HasRoot       bool
	RootService   string
	RootOperation string
	// Start is the earliest span start; Duration runs from it to the latest span end.
	Start      time.Time
	Duration   time.Duration
	SpanCount  int
	ErrorCount int
	// Services lists every service with spans in the trace, sorted by name.
	Services []ServiceSummary
}

// ServiceSummary counts one service's spans in a trace.
type ServiceSummary struct {
	Name       string
	SpanCount  int
	ErrorCount int
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

// DependencyReader returns the service dependency graph: calls from one service to
// another, counted when the spans were written. Stores that can offer it implement it;
// callers find it by type assertion.
type DependencyReader interface {
	// GetDependencies returns the links with calls in the time buckets that overlap
	// [endTs-lookback, endTs], summed over those buckets, one link per (Parent, Child),
	// sorted by Parent then Child. It never returns nil.
	GetDependencies(ctx context.Context, endTs time.Time, lookback time.Duration) ([]DependencyLink, error)
}

// DependencyLink is one edge of the service graph: CallCount calls from spans of
// Parent to spans of Child (or to an uninstrumented peer named by the caller), of which
// ErrorCount had status Error on the called side.
type DependencyLink struct {
	Parent     string
	Child      string
	CallCount  uint64
	ErrorCount uint64
}

// TraceDeleter deletes stored traces by ID. Stores that can offer it implement it;
// callers find it by type assertion.
type TraceDeleter interface {
	// DeleteTrace makes the trace unreachable at once: GetTrace answers ErrTraceNotFound
	// and no search returns it. Spans that arrive for it later make it reappear with
	// those spans only. It returns ErrTraceNotFound when no such trace is stored.
	DeleteTrace(ctx context.Context, traceID pcommon.TraceID) error
}

// TraceIDLow64Finder finds stored traces by the low 64 bits of their ID. Zipkin clients
// that propagate 64-bit IDs, and users holding a 16-hex ID, name by its low half a trace
// that other services recorded with 128 bits; Zipkin answers such a lookup with every
// trace whose low 64 bits match. Stores that can offer it implement it; callers find it
// by type assertion.
type TraceIDLow64Finder interface {
	// FindTraceIDsByLow64 returns the IDs of every stored trace whose last 8 bytes, read
	// big-endian, equal low, in any order. It never returns nil.
	FindTraceIDsByLow64(ctx context.Context, low uint64) ([]pcommon.TraceID, error)
}

// TraceIDScanner lists the IDs of recent traces from an index alone, reading no summary
// and no span: what a caller needs that checks a property of the ID itself (Zipkin's
// lookup of a 64-bit ID among 128-bit traces, without a TraceIDLow64Finder). Stores that
// can offer it implement it; callers find it by type assertion.
type TraceIDScanner interface {
	// ScanTraceIDs calls fn with the ID of each stored trace that has a span starting at
	// or after since, newest first by the batches that carried them (not exactly by
	// trace start), until fn returns false or the traces run out. A trace may be named
	// more than once (once per batch of its spans, say), and may have been deleted since
	// its spans were indexed: GetTrace then answers ErrTraceNotFound.
	ScanTraceIDs(ctx context.Context, since time.Time, fn func(pcommon.TraceID) bool) error
}

// AttributeValueReader lists the values seen for one attribute key: Zipkin's
// autocompleteValues and remoteServices. Stores that can offer it implement it, from a
// catalog maintained at write time; callers find it by type assertion.
type AttributeValueReader interface {
	// CatalogAttributeValues makes the store catalog, from now on, the values of the
	// attributes keys (added to those it catalogs already). A reader names its keys once,
	// before it asks for their values.
	CatalogAttributeValues(keys ...string)
	// GetAttributeValues returns the distinct values (pcommon.Value.AsString) of the
	// attribute q.Key on spans, their resources or scopes, sorted, at most q.Limit of
	// them (zero: no limit). With q.ServiceName set, only spans of that service count.
	// It never returns nil.
	GetAttributeValues(ctx context.Context, q AttributeValuesQuery) ([]string, error)
}

// AttributeValuesQuery selects the values of one attribute key.
type AttributeValuesQuery struct {
	Key         string
	ServiceName string
	Limit       int
}

// RollupWriter keeps the analytics rollups (RED series and service graph edges, see
// rollups.go) that the analytics stage computes on every span before sampling. Stores
// that can offer it implement it; callers find it by type assertion.
//
// WriteRollups adds the batch's counts to those already stored: rollups are deltas,
// and writing the same batch twice counts it twice (the analytics stage writes each
// delta once). They are kept in time buckets that retention drops with the spans of
// the same time. b is read-only for the duration of the call.
type RollupWriter interface {
	WriteRollups(ctx context.Context, b RollupBatch) error
}

// RollupReader reads the rollups back, summed per minute over every delta written.
type RollupReader interface {
	// ReadRED returns the RED series of the minutes overlapping [q.Start, q.End], one
	// per (minute, service, operation, kind), sorted by minute then service, operation
	// and kind; q.Service, when set, keeps only that service. Never nil.
	ReadRED(ctx context.Context, q RollupQuery) ([]REDRollup, error)
	// ReadEdges returns the service graph edges of the minutes overlapping
	// [q.Start, q.End], one per (minute, parent, child, kind), sorted likewise;
	// q.Service, when set, keeps the edges with it as parent or child. Never nil.
	ReadEdges(ctx context.Context, q RollupQuery) ([]EdgeRollup, error)
	// HasRollups reports whether rollups are being written to, or are stored in, this
	// store: readers then prefer them to counts taken from the stored spans, which
	// sampling thins.
	HasRollups() bool
}

// AlertStateStore keeps the alert engine's state (one opaque document, JSON by
// convention), so that a restart keeps firing alerts firing and the query API can
// list rules, their states and recent firings.
type AlertStateStore interface {
	PutAlertState(ctx context.Context, doc []byte) error
	// GetAlertState returns the last document put, or nil when there is none.
	GetAlertState(ctx context.Context) ([]byte, error)
}
