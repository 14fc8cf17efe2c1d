package query

import (
	"encoding/binary"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Zipkin query parameters (REFERENCE.md §1.1). Messages are Zipkin's own where Zipkin has
// one (QueryRequest.build, Span.normalizeTraceId, the traceMany handler), so scripts that
// match on them keep working.

// DefaultZipkinLookback is Zipkin's QUERY_LOOKBACK: one day, in the window of
// /api/v2/traces and /api/v2/dependencies without lookback.
const DefaultZipkinLookback = 24 * time.Hour

// DefaultZipkinLimit is the number of traces /api/v2/traces returns without limit.
const DefaultZipkinLimit = 10

// zipkinTraceID is a parsed Zipkin trace ID. A 64-bit ID (16 hex digits or fewer, or 32
// digits whose high half is zero) names its low half only.
type zipkinTraceID struct {
	id     pcommon.TraceID
	only64 bool
}

// parseZipkinTraceID reads a trace ID as Zipkin's Span.normalizeTraceId does: 1 to 32
// lower-hex digits, left-padded to 16 or 32; not all zeros.
func parseZipkinTraceID(s string) (zipkinTraceID, error) {
	if s == "" {
		return zipkinTraceID{}, badParam("traceId is empty")
	}
	if len(s) > 32 {
		return zipkinTraceID{}, badParam("traceId.length > 32")
	}
	var hi, lo uint64
	split := max(len(s)-16, 0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return zipkinTraceID{}, badParam("%s should be lower-hex encoded with no prefix", truncate(s))
		}
		if i < split {
			hi = hi<<4 | uint64(v)
		} else {
			lo = lo<<4 | uint64(v)
		}
	}
	if hi == 0 && lo == 0 {
		return zipkinTraceID{}, badParam("traceId is all zeros")
	}
	var t zipkinTraceID
	binary.BigEndian.PutUint64(t.id[:8], hi)
	binary.BigEndian.PutUint64(t.id[8:], lo)
	t.only64 = hi == 0
	return t, nil
}

// parseTraceIDList reads traceMany's traceIds: a comma list of at least two distinct IDs.
func parseTraceIDList(s string) ([]zipkinTraceID, error) {
	if s == "" {
		return nil, badParam("traceIds parameter is empty")
	}
	parts := strings.SplitN(s, ",", 1000)
	ids := make([]zipkinTraceID, 0, len(parts))
	seen := make(map[pcommon.TraceID]struct{}, len(parts))
	for _, p := range parts {
		id, err := parseZipkinTraceID(p)
		if err != nil {
			return nil, err
		}
		if _, dup := seen[id.id]; dup {
			return nil, badParam("redundant input: %s", truncate(p))
		}
		seen[id.id] = struct{}{}
		ids = append(ids, id)
	}
	if len(ids) < 2 {
		return nil, badParam("Use /api/v2/trace/{traceId} endpoint to retrieve a single trace")
	}
	return ids, nil
}

// annotationTerm is one term of an annotationQuery: key=value matches a tag; a bare key
// matches an annotation value or a tag key.
type annotationTerm struct {
	key, value string
	hasValue   bool
}

// parseAnnotationQuery splits "http.uri=/foo and retried" as Zipkin's
// QueryRequest.parseAnnotationQuery does: terms separated by " and ", keys and values
// trimmed, a later key=value overriding an earlier one, a bare word never overriding.
// Zipkin keeps a term with an empty key; it could match nothing useful, so it is refused.
func parseAnnotationQuery(s string) ([]annotationTerm, error) {
	if s == "" {
		return nil, nil
	}
	var terms []annotationTerm
	index := map[string]int{}
	for _, raw := range strings.SplitN(s, " and ", 100) {
		var t annotationTerm
		if k, v, ok := strings.Cut(raw, "="); ok {
			t = annotationTerm{key: strings.TrimSpace(k), value: strings.TrimSpace(v), hasValue: true}
		} else {
			t = annotationTerm{key: strings.TrimSpace(raw)}
		}
		if t.key == "" {
			return nil, badParam("annotationQuery term %q has no key", truncate(raw))
		}
		if i, ok := index[t.key]; ok {
			if t.hasValue {
				terms[i] = t
			}
			continue
		}
		index[t.key] = len(terms)
		terms = append(terms, t)
	}
	return terms, nil
}

// zipkinQuery is a parsed GET /api/v2/traces. Names are lowercased, as Zipkin compares
// them; empty means any.
type zipkinQuery struct {
	serviceName, remoteServiceName, spanName string
	annotations                              []annotationTerm
	// minDuration and maxDuration are in µs; zero is unset.
	minDuration, maxDuration int64
	endTs                    time.Time
	lookback                 time.Duration
	limit                    int
}

// parseZipkinQuery reads the search parameters. Empty parameters are absent, as Lens
// sends them empty.
func parseZipkinQuery(q url.Values, now time.Time, maxLimit int) (zipkinQuery, error) {
	zq := zipkinQuery{
		serviceName:       strings.ToLower(q.Get("serviceName")),
		remoteServiceName: strings.ToLower(q.Get("remoteServiceName")),
		spanName:          strings.ToLower(q.Get("spanName")),
		limit:             DefaultZipkinLimit,
		lookback:          DefaultZipkinLookback,
	}
	if zq.spanName == "all" {
		zq.spanName = ""
	}
	var err error
	if zq.annotations, err = parseAnnotationQuery(q.Get("annotationQuery")); err != nil {
		return zq, err
	}
	minSet, maxSet := false, false
	if zq.minDuration, minSet, err = parseZipkinInt(q, "minDuration"); err != nil {
		return zq, err
	}
	if zq.maxDuration, maxSet, err = parseZipkinInt(q, "maxDuration"); err != nil {
		return zq, err
	}
	if minSet {
		if zq.minDuration <= 0 {
			return zq, badParam("minDuration <= 0")
		}
		if maxSet && zq.maxDuration < zq.minDuration {
			return zq, badParam("maxDuration < minDuration")
		}
	} else if maxSet {
		return zq, badParam("maxDuration is only valid with minDuration")
	}
	if zq.endTs, zq.lookback, err = parseZipkinWindow(q, now, false); err != nil {
		return zq, err
	}
	if n, set, err := parseZipkinInt(q, "limit"); err != nil {
		return zq, err
	} else if set {
		if n <= 0 {
			return zq, badParam("limit <= 0")
		}
		if n > int64(maxLimit) {
			return zq, badParam("limit > %d", maxLimit)
		}
		zq.limit = int(n)
	}
	return zq, nil
}

// parseZipkinWindow reads endTs and lookback, both in ms. endTs defaults to now unless
// required (dependencies); lookback to one day.
func parseZipkinWindow(q url.Values, now time.Time, endRequired bool) (time.Time, time.Duration, error) {
	end, endSet, err := parseZipkinInt(q, "endTs")
	if err != nil {
		return time.Time{}, 0, err
	}
	endTs := now
	switch {
	case endSet && end <= 0:
		return time.Time{}, 0, badParam("endTs <= 0")
	case endSet:
		endTs = time.UnixMilli(end)
	case endRequired:
		return time.Time{}, 0, badParam("endTs is required")
	}
	lookback := DefaultZipkinLookback
	if lb, set, err := parseZipkinInt(q, "lookback"); err != nil {
		return time.Time{}, 0, err
	} else if set {
		if lb <= 0 {
			return time.Time{}, 0, badParam("lookback <= 0")
		}
		if lb > math.MaxInt64/int64(time.Millisecond) {
			return time.Time{}, 0, badParam("lookback %d is too large", lb)
		}
		lookback = time.Duration(lb) * time.Millisecond
	}
	return endTs, lookback, nil
}

// parseZipkinInt reads an int64 parameter; empty is absent.
func parseZipkinInt(q url.Values, name string) (int64, bool, error) {
	s := q.Get(name)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, badParam("%s must be an integer, got %q", name, truncate(s))
	}
	return n, true, nil
}
