package query

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/storage"
)

// Spoor's own search API under /spoor/api/v1, described by openapi.json (served at
// /spoor/api/v1/openapi.json). What the Jaeger and Zipkin surfaces cannot say: trace
// duration next to span duration, status, OR / NOT / regular expressions on attributes,
// newest first with cursor pagination over a consistent snapshot, and summaries instead of
// whole traces. Errors are {"error":{"status":…,"message":…}}.

// DefaultSpoorSearchLimit is the page size of GET /spoor/api/v1/search without limit.
const DefaultSpoorSearchLimit = 20

// spoorScanPages bounds the store pages one request reads when the store cuts its pages
// short (spoorScanLimit); the answer then carries a cursor to go on from.
const spoorScanPages = 20

// spoorScanLimit is the store's ScanLimit for each of those pages: how many traces it
// checks against their spans (status unset, span durations, NOT filters, regular
// expressions, …) before it answers with what it has. A search for something rare then
// answers within spoorScanPages × spoorScanLimit span reads, with a cursor, instead of
// reading every trace of the window.
const spoorScanLimit = 50

//go:embed openapi.json
var openAPIDocument []byte

// spoorSearch is a parsed GET /spoor/api/v1/search. Every condition, regular expressions
// included (storage.AttributeFilter.Match), is the store's to decide.
type spoorSearch struct {
	query storage.TraceQuery
}

func parseSpoorSearch(q url.Values, now time.Time, lookback time.Duration, maxLimit int) (spoorSearch, error) {
	var s spoorSearch
	tq := &s.query
	tq.ServiceName = q.Get("service")
	tq.OperationName = q.Get("operation")
	var err error
	end, start := now, time.Time{}
	if v := q.Get("end"); v != "" {
		if end, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return s, badParam("parameter 'end' must be an RFC 3339 time, got %q", truncate(v))
		}
	}
	start = end.Add(-lookback)
	if v := q.Get("start"); v != "" {
		if start, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return s, badParam("parameter 'start' must be an RFC 3339 time, got %q", truncate(v))
		}
	}
	if start.After(end) {
		return s, badParam("parameter 'start' is after parameter 'end'")
	}
	tq.StartTimeMin, tq.StartTimeMax = start, end
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"minDuration", &tq.DurationMin}, {"maxDuration", &tq.DurationMax},
		{"minTraceDuration", &tq.TraceDurationMin}, {"maxTraceDuration", &tq.TraceDurationMax},
	} {
		if *d.dst, err = parseDurationParam(q, d.name); err != nil {
			return s, err
		}
	}
	if tq.DurationMax != 0 && tq.DurationMax < tq.DurationMin {
		return s, badParam("'maxDuration' should be greater than 'minDuration'")
	}
	if tq.TraceDurationMax != 0 && tq.TraceDurationMax < tq.TraceDurationMin {
		return s, badParam("'maxTraceDuration' should be greater than 'minTraceDuration'")
	}
	switch st := q.Get("status"); st {
	case "":
	case "error":
		tq.ErrorsOnly = true
	case "ok":
		tq.Status = storage.StatusOK
	case "unset":
		tq.Status = storage.StatusUnset
	default:
		return s, badParam("parameter 'status' must be error, ok or unset, got %q", truncate(st))
	}
	switch ts := q.Get("traceStatus"); ts {
	case "":
	case "error":
		tq.TraceErrorsOnly = true
	default:
		return s, badParam("parameter 'traceStatus' must be error, got %q", truncate(ts))
	}
	if tq.AttributeFilters, err = parseAttrFilters(q["attr"], false); err != nil {
		return s, err
	}
	nots, err := parseAttrFilters(q["notAttr"], true)
	if err != nil {
		return s, err
	}
	tq.AttributeFilters = append(tq.AttributeFilters, nots...)
	for _, m := range q["attrMatch"] {
		k, expr, ok := strings.Cut(m, "=")
		if !ok || k == "" {
			return s, badParam("malformed 'attrMatch' parameter, expecting key=regexp, got %q", truncate(m))
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return s, badParam("parameter 'attrMatch' for %q: %v", truncate(k), err)
		}
		tq.AttributeFilters = append(tq.AttributeFilters, storage.AttributeFilter{Key: k, Match: re})
	}
	tq.Limit = DefaultSpoorSearchLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return s, badParam("parameter 'limit' must be an integer from 1 to %d, got %q", maxLimit, truncate(v))
		}
		tq.Limit = n
	}
	tq.Cursor = q.Get("cursor")
	return s, nil
}

// parseAttrFilters reads attr (or notAttr) parameters: key=value, repeated with the same
// key for OR (for notAttr: none of them); a bare key for present (notAttr: absent).
func parseAttrFilters(params []string, negate bool) ([]storage.AttributeFilter, error) {
	name := "attr"
	if negate {
		name = "notAttr"
	}
	var out []storage.AttributeFilter
	index := map[string]int{}
	for _, p := range params {
		k, v, hasValue := strings.Cut(p, "=")
		if k == "" {
			return nil, badParam("malformed '%s' parameter, expecting key or key=value, got %q", name, truncate(p))
		}
		i, seen := index[k]
		if !seen {
			i = len(out)
			index[k] = i
			out = append(out, storage.AttributeFilter{Key: k, Negate: negate})
		}
		if hasValue != (len(out[i].Values) > 0) && seen {
			return nil, badParam("parameter '%s' gives %q both with and without a value", name, truncate(k))
		}
		if hasValue {
			out[i].Values = append(out[i].Values, v)
		}
	}
	return out, nil
}

func (a *API) spoorError(c echo.Context, status int, msg string) error {
	body := append([]byte(`{"error":{"status":`), strconv.Itoa(status)...)
	body = append(body, `,"message":`...)
	body = appendJSONString(body, msg)
	return writeJSON(c, status, append(body, "}}"...))
}

func (a *API) spoorFailure(c echo.Context, op string, err error) error {
	var pe *paramError
	switch {
	case errors.As(err, &pe):
		return a.spoorError(c, http.StatusBadRequest, pe.msg)
	case storage.IsInvalidInput(err):
		return a.spoorError(c, http.StatusBadRequest, err.Error())
	}
	a.log.Error("query storage failed", zap.String("op", op), zap.String("path", c.Request().URL.Path), zap.Error(err))
	return a.spoorError(c, http.StatusInternalServerError, op+": "+err.Error())
}

// GET /spoor/api/v1/openapi.json
func (a *API) spoorOpenAPI(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, openAPIDocument)
}

// GET /spoor/api/v1/search
func (a *API) spoorSearch(c echo.Context) error {
	s, err := parseSpoorSearch(c.QueryParams(), a.now(), a.opts.SearchLookback, a.opts.MaxSearchLimit)
	if err != nil {
		return a.spoorFailure(c, "search", err)
	}
	searcher, ok := a.reader.(storage.Searcher)
	if !ok {
		return a.spoorError(c, http.StatusNotImplemented, "paginated search is not supported by this trace store")
	}
	ctx := c.Request().Context()
	out, next, err := s.run(ctx, searcher, a.scanLimit)
	if err != nil {
		return a.spoorFailure(c, "search traces", err)
	}
	est, next, err := s.estimate(ctx, a.reader, len(out), next)
	if err != nil {
		return a.spoorFailure(c, "estimate the total", err)
	}
	buf := getBuf()
	defer putBuf(buf)
	*buf = append(*buf, `{"traces":[`...)
	for i := range out {
		if i > 0 {
			*buf = append(*buf, ',')
		}
		*buf = appendSpoorSummary(*buf, &out[i])
	}
	*buf = append(*buf, `],"nextCursor":`...)
	*buf = appendJSONString(*buf, next)
	if est.known {
		*buf = append(*buf, `,"estimatedTotal":`...)
		*buf = strconv.AppendInt(*buf, est.count, 10)
		*buf = append(*buf, `,"estimatedTotalExact":`...)
		*buf = strconv.AppendBool(*buf, est.exact)
	}
	*buf = append(*buf, '}')
	return writeJSON(c, http.StatusOK, *buf)
}

// spoorCursor is where a search continues: the store's cursor of a page, and how many
// traces of the page it opens were already answered (with the page size that makes the
// store return that same page again: pages after the first come from one snapshot).
type spoorCursor struct {
	Store string `json:"c,omitempty"`
	Skip  int    `json:"s,omitempty"`
	Page  int    `json:"p,omitempty"`
	// Total is the first page's estimate, carried to the pages after it (1 + the count,
	// so that zero means none); Exact says whether it is exact.
	Total int64 `json:"t,omitempty"`
	Exact bool  `json:"x,omitempty"`
}

// totalEstimate is the estimated number of matches of a whole search.
type totalEstimate struct {
	known bool
	count int64
	exact bool
}

// estimate returns the search's estimated total, and next with the estimate carried in
// it. The first page computes it: the page itself when it is the last one, else the
// store's estimate (storage.TraceCounter), exact when the store's is. Later pages read it
// from their cursor.
func (s *spoorSearch) estimate(ctx context.Context, reader storage.Reader, answered int, next string) (totalEstimate, string, error) {
	var est totalEstimate
	if s.query.Cursor != "" {
		cur, err := decodeSpoorCursor(s.query.Cursor)
		if err != nil {
			return est, next, err
		}
		est = totalEstimate{known: cur.Total > 0, count: cur.Total - 1, exact: cur.Exact}
	} else if next == "" {
		est = totalEstimate{known: true, count: int64(answered), exact: true}
	} else if tc, ok := reader.(storage.TraceCounter); ok {
		e, err := tc.EstimateTraces(ctx, s.query)
		if err != nil {
			return est, next, err
		}
		est = totalEstimate{known: true, count: max(e.Count, int64(answered)), exact: e.Exact}
	}
	if next == "" || !est.known {
		return est, next, nil
	}
	cur, err := decodeSpoorCursor(next)
	if err != nil {
		panic("BUG: the search's own cursor does not decode: " + err.Error())
	}
	cur.Total, cur.Exact = est.count+1, est.exact
	return est, cur.encode(), nil
}

func (c spoorCursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic("BUG: encode cursor: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSpoorCursor(s string) (spoorCursor, error) {
	var c spoorCursor
	if s == "" {
		return c, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Skip < 0 || c.Page < 0 || c.Total < 0 || (c.Skip > 0 && (c.Store == "" || c.Page == 0 || c.Skip >= c.Page)) {
		return spoorCursor{}, badParam("parameter 'cursor' is not a cursor this API returned")
	}
	return c, nil
}

// run answers one page: at most s.query.Limit matches, newest first, and the cursor to
// continue from ("" at the end). scanLimit is the store's ScanLimit for each store page:
// when the store cuts its pages short, run reads up to spoorScanPages of them.
func (s *spoorSearch) run(ctx context.Context, searcher storage.Searcher, scanLimit int) ([]storage.TraceSummary, string, error) {
	cur, err := decodeSpoorCursor(s.query.Cursor)
	if err != nil {
		return nil, "", err
	}
	want := s.query.Limit
	var out []storage.TraceSummary
	for page := 0; ; page++ {
		q := s.query
		q.Cursor = cur.Store
		q.ScanLimit = scanLimit
		q.Limit = want - len(out)
		if cur.Skip > 0 {
			// A cursor inside a store page (this API cut pages so before the store
			// checked regular expressions): the same page again, to skip what was answered.
			q.Limit = cur.Page
		}
		res, err := searcher.SearchTraces(ctx, q, storage.SummariesOnly)
		if err != nil {
			return nil, "", err
		}
		for i := cur.Skip; i < len(res.Summaries); i++ {
			out = append(out, res.Summaries[i])
			if len(out) == want {
				if i+1 < len(res.Summaries) && q.Cursor != "" {
					return out, spoorCursor{Store: q.Cursor, Skip: i + 1, Page: q.Limit}.encode(), nil
				}
				if res.NextCursor == "" {
					return out, "", nil
				}
				return out, spoorCursor{Store: res.NextCursor}.encode(), nil
			}
		}
		if res.NextCursor == "" {
			return out, "", nil
		}
		cur = spoorCursor{Store: res.NextCursor}
		if page+1 == spoorScanPages {
			return out, cur.encode(), nil
		}
	}
}

// GET /spoor/api/v1/traces/{traceID}/summary
func (a *API) spoorTraceSummary(c echo.Context) error {
	raw, err := pathParam(c.Request().URL.RawPath != "", c.Param("traceID"), "traceID")
	if err != nil {
		return a.spoorFailure(c, "get trace summary", err)
	}
	id, err := parseTraceID(raw)
	if err != nil {
		return a.spoorFailure(c, "get trace summary", err)
	}
	sr, ok := a.reader.(storage.SummaryReader)
	if !ok {
		return a.spoorError(c, http.StatusNotImplemented, "trace summaries are not supported by this trace store")
	}
	sum, err := sr.GetTraceSummary(c.Request().Context(), id)
	if errors.Is(err, storage.ErrTraceNotFound) {
		return a.spoorError(c, http.StatusNotFound, "trace "+traceIDString(id)+" not found")
	}
	if err != nil {
		return a.spoorFailure(c, "get trace summary", err)
	}
	return writeJSON(c, http.StatusOK, appendSpoorSummary(nil, &sum))
}

// DELETE /spoor/api/v1/traces/{traceID}: 204 when deleted, 404 when not stored.
func (a *API) spoorDeleteTrace(c echo.Context) error {
	raw, err := pathParam(c.Request().URL.RawPath != "", c.Param("traceID"), "traceID")
	if err != nil {
		return a.spoorFailure(c, "delete trace", err)
	}
	id, err := parseTraceID(raw)
	if err != nil {
		return a.spoorFailure(c, "delete trace", err)
	}
	d, ok := a.reader.(storage.TraceDeleter)
	if !ok {
		return a.spoorError(c, http.StatusNotImplemented, "deleting traces is not supported by this trace store")
	}
	err = d.DeleteTrace(c.Request().Context(), id)
	if errors.Is(err, storage.ErrTraceNotFound) {
		return a.spoorError(c, http.StatusNotFound, "trace "+traceIDString(id)+" not found")
	}
	if err != nil {
		return a.spoorFailure(c, "delete trace", err)
	}
	return c.NoContent(http.StatusNoContent)
}

// appendSpoorSummary writes a TraceSummary; times as RFC 3339 and as unix nanoseconds in
// a string (JavaScript numbers cannot hold them).
func appendSpoorSummary(dst []byte, s *storage.TraceSummary) []byte {
	dst = append(dst, `{"traceId":"`...)
	dst = appendHex(dst, s.TraceID[:])
	dst = append(dst, `","hasRoot":`...)
	dst = strconv.AppendBool(dst, s.HasRoot)
	dst = append(dst, `,"rootService":`...)
	dst = appendJSONString(dst, s.RootService)
	dst = append(dst, `,"rootOperation":`...)
	dst = appendJSONString(dst, s.RootOperation)
	dst = append(dst, `,"start":"`...)
	dst = s.Start.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","startUnixNano":"`...)
	dst = strconv.AppendInt(dst, s.Start.UnixNano(), 10)
	dst = append(dst, `","durationNanos":`...)
	dst = strconv.AppendInt(dst, int64(s.Duration), 10)
	dst = append(dst, `,"spanCount":`...)
	dst = strconv.AppendInt(dst, int64(s.SpanCount), 10)
	dst = append(dst, `,"errorCount":`...)
	dst = strconv.AppendInt(dst, int64(s.ErrorCount), 10)
	dst = append(dst, `,"services":[`...)
	for i, ss := range s.Services {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendJSONString(dst, ss.Name)
		dst = append(dst, `,"spanCount":`...)
		dst = strconv.AppendInt(dst, int64(ss.SpanCount), 10)
		dst = append(dst, `,"errorCount":`...)
		dst = strconv.AppendInt(dst, int64(ss.ErrorCount), 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}
