package storage

import (
	"math"
	"math/bits"
	"time"
)

// Rollups are the aggregates the analytics stage computes on 100% of spans, before
// sampling: counts are weighted by each span's adjusted count (2^56/(2^56-T) for an
// upstream th; 1 without one), so they are float64 and estimate the true volume.

// RollupStep is the time resolution of rollups: one minute, by span start.
const RollupStep = time.Minute

// RollupQuery selects the rollups of a time range.
type RollupQuery struct {
	Start, End time.Time
	Service    string
}

// RollupBatch is what the analytics stage writes in one flush.
type RollupBatch struct {
	RED   []REDRollup
	Edges []EdgeRollup
}

// REDRollup is one minute of one (service, operation, span kind): Rate (Calls),
// Errors, and the Duration histogram of the spans.
type REDRollup struct {
	// Minute is the start of the minute, UTC, truncated to RollupStep.
	Minute    time.Time
	Service   string
	Operation string
	// Kind is the OTLP SpanKind number (0 unspecified … 5 consumer).
	Kind     uint8
	Calls    float64
	Errors   float64
	Duration Histogram
}

// EdgeKind says what an edge of the service graph stands for.
type EdgeKind uint8

const (
	// EdgeRequest is a span whose parent span belongs to another service (a client
	// span calling a server, or any cross-service parent).
	EdgeRequest EdgeKind = 0
	// EdgeMessaging is a consumer span whose parent is a producer span of another service.
	EdgeMessaging EdgeKind = 1
	// EdgePeer is a client or producer span naming an uninstrumented peer
	// (peer.service, service.peer.name, server.address) that no span answered.
	EdgePeer EdgeKind = 2
)

// EdgeRollup is one minute of one edge parent → child of the service graph.
type EdgeRollup struct {
	Minute        time.Time
	Parent, Child string
	Kind          EdgeKind
	Calls         float64
	// Errors counts calls where the caller's or the called span has status Error.
	Errors float64
	// Latency is the caller's span duration when the caller is a client or producer
	// span, else the called span's duration.
	Latency Histogram
}

// Histogram counts durations in fixed log-linear buckets: bucket 0 holds durations
// below 1024 ns; above, every power of two is split in 4 equal buckets (bucket widths
// 14–25% of their lower bound) up to 2^47 ns (39 h), the last bucket taking the rest.
// Index and bounds are pure functions, so every writer and reader agree.
type Histogram struct {
	// Counts holds the weighted count of bucket i at Counts[i]; trailing zero
	// buckets may be absent. Nil is an empty histogram.
	Counts []float64
}

// HistogramBuckets is the number of buckets of a Histogram.
const HistogramBuckets = 1 + (47-11+1)*4

// HistogramBucket returns the bucket index of a duration.
func HistogramBucket(d time.Duration) int {
	ns := uint64(max(d, 0))
	if ns < 1024 {
		return 0
	}
	e := bits.Len64(ns) // 11 …
	sub := int(ns>>(e-3)) & 3
	i := 1 + (e-11)*4 + sub
	return min(i, HistogramBuckets-1)
}

// HistogramBounds returns bucket i's lower and upper bounds, [lo, hi).
func HistogramBounds(i int) (lo, hi time.Duration) {
	if i <= 0 {
		return 0, 1024
	}
	e := (i-1)/4 + 11
	sub := uint64((i - 1) % 4)
	lo = time.Duration((4 + sub) << (e - 3))
	hi = time.Duration((5 + sub) << (e - 3))
	if i == HistogramBuckets-1 {
		hi = math.MaxInt64
	}
	return lo, hi
}

// Add counts a duration with weight w.
func (h *Histogram) Add(d time.Duration, w float64) {
	i := HistogramBucket(d)
	if i >= len(h.Counts) {
		h.Counts = append(h.Counts, make([]float64, i+1-len(h.Counts))...)
	}
	h.Counts[i] += w
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o Histogram) {
	if len(o.Counts) > len(h.Counts) {
		h.Counts = append(h.Counts, make([]float64, len(o.Counts)-len(h.Counts))...)
	}
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
}

// Total is the sum of the counts.
func (h Histogram) Total() float64 {
	var t float64
	for _, c := range h.Counts {
		t += c
	}
	return t
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1), interpolating linearly inside the
// bucket that holds it; 0 for an empty histogram. The estimate lies in the same
// bucket as the exact quantile, so it is within that bucket's width of it.
func (h Histogram) Quantile(q float64) time.Duration {
	total := h.Total()
	if total <= 0 {
		return 0
	}
	rank := q * total
	var cum float64
	for i, c := range h.Counts {
		if c <= 0 {
			continue
		}
		if cum+c >= rank {
			lo, hi := HistogramBounds(i)
			if i == HistogramBuckets-1 {
				return lo
			}
			f := (rank - cum) / c
			return lo + time.Duration(f*float64(hi-lo))
		}
		cum += c
	}
	lo, _ := HistogramBounds(len(h.Counts) - 1)
	return lo
}
