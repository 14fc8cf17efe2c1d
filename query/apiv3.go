package query

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/storage"
)

// Handlers of Jaeger's api_v3 HTTP gateway (REFERENCE.md §1.3): OTLP JSON results
// wrapped as {"result": …}, errors as {"error":{"httpCode":…,"message":…}}. Parameter
// names are the gateway's camelCase ones, with its snake_case aliases; the camelCase one
// wins when both are sent, and messages name the parameter as the client spelled it.

// v3Param is one api_v3 parameter: its canonical name and its deprecated aliases.
type v3Param struct {
	name    string
	aliases []string
}

var (
	v3ServiceName   = v3Param{"query.serviceName", []string{"query.service_name"}}
	v3OperationName = v3Param{"query.operationName", []string{"query.operation_name"}}
	v3Attributes    = v3Param{"query.attributes", nil}
	v3TimeMin       = v3Param{"query.startTimeMin", []string{"query.start_time_min"}}
	v3TimeMax       = v3Param{"query.startTimeMax", []string{"query.start_time_max"}}
	v3DurationMin   = v3Param{"query.durationMin", []string{"query.duration_min"}}
	v3DurationMax   = v3Param{"query.durationMax", []string{"query.duration_max"}}
	v3SearchDepth   = v3Param{"query.searchDepth", []string{"query.search_depth", "query.numTraces", "query.num_traces"}}
	v3QueryRaw      = v3Param{"query.rawTraces", []string{"query.raw_traces"}}
	v3Filter        = v3Param{"query.filter", nil}
	v3StartTime     = v3Param{"startTime", []string{"start_time"}}
	v3EndTime       = v3Param{"endTime", []string{"end_time"}}
	v3RawTraces     = v3Param{"rawTraces", []string{"raw_traces"}}
	v3SpanKind      = v3Param{"spanKind", []string{"span_kind"}}
)

// get returns the parameter's value and the name it came under.
func (p v3Param) get(q url.Values) (string, string) {
	if v := q.Get(p.name); v != "" {
		return v, p.name
	}
	for _, a := range p.aliases {
		if v := q.Get(a); v != "" {
			return v, a
		}
	}
	return "", p.name
}

func malformed(name string, err error) error {
	return badParam("malformed parameter %s: %v", name, err)
}

// v3Query is a parsed GET /api/v3/traces or /api/v3/trace-summaries.
type v3Query struct {
	query storage.TraceQuery
	raw   bool
}

// parseV3Query reads the api_v3 search parameters. Both ends of the window are required,
// as in Jaeger; the search depth defaults to storage.DefaultLimit.
func parseV3Query(q url.Values, maxLimit int) (v3Query, error) {
	var p v3Query
	p.query.ServiceName, _ = v3ServiceName.get(q)
	p.query.OperationName, _ = v3OperationName.get(q)
	minStr, minName := v3TimeMin.get(q)
	maxStr, maxName := v3TimeMax.get(q)
	if minStr == "" || maxStr == "" {
		return p, badParam("%s and %s are required", v3TimeMin.name, v3TimeMax.name)
	}
	var err error
	if p.query.StartTimeMin, err = time.Parse(time.RFC3339Nano, minStr); err != nil {
		return p, malformed(minName, err)
	}
	if p.query.StartTimeMax, err = time.Parse(time.RFC3339Nano, maxStr); err != nil {
		return p, malformed(maxName, err)
	}
	if p.query.StartTimeMin.After(p.query.StartTimeMax) {
		return p, badParam("%s must not be after %s", minName, maxName)
	}
	for _, d := range []struct {
		param v3Param
		dst   *time.Duration
	}{{v3DurationMin, &p.query.DurationMin}, {v3DurationMax, &p.query.DurationMax}} {
		s, name := d.param.get(q)
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return p, malformed(name, err)
		}
		if v < 0 {
			return p, malformed(name, errors.New("negative duration"))
		}
		*d.dst = v
	}
	if p.query.DurationMin != 0 && p.query.DurationMax != 0 && p.query.DurationMax < p.query.DurationMin {
		return p, badParam("%s must not be less than %s", v3DurationMax.name, v3DurationMin.name)
	}
	p.query.Limit = storage.DefaultLimit
	if s, name := v3SearchDepth.get(q); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, malformed(name, err)
		}
		if n < 1 || n > maxLimit {
			return p, malformed(name, errors.New("must be from 1 to "+strconv.Itoa(maxLimit)))
		}
		p.query.Limit = n
	}
	if s, name := v3QueryRaw.get(q); s != "" {
		if p.raw, err = strconv.ParseBool(s); err != nil {
			return p, malformed(name, err)
		}
	}
	if s, name := v3Attributes.get(q); s != "" {
		attrs := map[string]string{}
		if err := decodeTagsJSON(s, attrs); err != nil {
			return p, malformed(name, err)
		}
		if len(attrs) > 0 {
			p.query.Attributes = attrs
		}
	}
	if s, name := v3Filter.get(q); s != "" {
		// Jaeger's filter expression AST has no stable published grammar yet; refusing it
		// is better than ignoring a condition the client relies on.
		return p, malformed(name, errors.New("filter expressions are not supported; use query.attributes"))
	}
	return p, nil
}

// v3Error writes {"error":{"httpCode":status,"message":msg}}.
func (a *API) v3Error(c echo.Context, status int, msg string) error {
	body := append([]byte(`{"error":{"httpCode":`), strconv.Itoa(status)...)
	body = append(body, `,"message":`...)
	body = appendJSONString(body, msg)
	return writeJSON(c, status, append(body, "}}"...))
}

func (a *API) v3ParamError(c echo.Context, err error) error {
	var pe *paramError
	if errors.As(err, &pe) {
		return a.v3Error(c, http.StatusBadRequest, pe.msg)
	}
	return a.v3StorageError(c, "query", err)
}

func (a *API) v3StorageError(c echo.Context, op string, err error) error {
	if storage.IsInvalidInput(err) {
		return a.v3Error(c, http.StatusBadRequest, err.Error())
	}
	a.log.Error("query storage failed", zap.String("op", op), zap.String("path", c.Request().URL.Path), zap.Error(err))
	return a.v3Error(c, http.StatusInternalServerError, op+": "+err.Error())
}

// GET /api/v3/services
func (a *API) v3Services(c echo.Context) error {
	services, err := a.reader.GetServices(c.Request().Context())
	if err != nil {
		return a.v3StorageError(c, "get services", err)
	}
	body := append([]byte(`{"services":`), appendJSONStrings(nil, services)...)
	return writeJSON(c, http.StatusOK, append(body, '}'))
}

// GET /api/v3/operations?service=&spanKind=
func (a *API) v3Operations(c echo.Context) error {
	q := c.QueryParams()
	service := q.Get("service")
	if service == "" {
		return a.v3Error(c, http.StatusBadRequest, "parameter service is required")
	}
	s, name := v3SpanKind.get(q)
	kind, err := parseSpanKind(s)
	if err != nil {
		return a.v3Error(c, http.StatusBadRequest, "malformed parameter "+name+": "+strconv.Quote(truncate(s))+
			" is not one of server, client, producer, consumer, internal, unspecified")
	}
	ops, err := a.reader.GetOperations(c.Request().Context(), storage.OperationQuery{ServiceName: service, SpanKind: kind})
	if err != nil {
		return a.v3StorageError(c, "get operations", err)
	}
	body := []byte(`{"operations":[`)
	for i, op := range ops {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"name":`...)
		body = appendJSONString(body, op.Name)
		body = append(body, `,"spanKind":`...)
		body = appendJSONString(body, op.SpanKind)
		body = append(body, '}')
	}
	return writeJSON(c, http.StatusOK, append(body, "]}"...))
}

// GET /api/v3/traces/{trace_id}?startTime=&endTime=&rawTraces=
func (a *API) v3Trace(c echo.Context) error {
	rawID, err := pathParam(c.Request().URL.RawPath != "", c.Param("traceID"), "trace_id")
	if err != nil {
		return a.v3ParamError(c, err)
	}
	id, err := parseTraceID(rawID)
	if err != nil {
		return a.v3Error(c, http.StatusBadRequest, "malformed parameter trace_id: "+err.Error())
	}
	q := c.QueryParams()
	// Time hints: checked, but the store finds a trace by ID alone.
	for _, p := range []v3Param{v3StartTime, v3EndTime} {
		if s, name := p.get(q); s != "" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return a.v3ParamError(c, malformed(name, err))
			}
		}
	}
	raw := false
	if s, name := v3RawTraces.get(q); s != "" {
		if raw, err = strconv.ParseBool(s); err != nil {
			return a.v3ParamError(c, malformed(name, err))
		}
	}
	td, err := a.reader.GetTrace(c.Request().Context(), id)
	if errors.Is(err, storage.ErrTraceNotFound) {
		return a.v3Error(c, http.StatusNotFound, "No traces found")
	}
	if err != nil {
		return a.v3StorageError(c, "get trace "+traceIDString(id), err)
	}
	return a.v3WriteTraces(c, []ptrace.Traces{td}, raw)
}

// GET /api/v3/traces
func (a *API) v3Search(c echo.Context) error {
	p, err := parseV3Query(c.QueryParams(), a.opts.MaxSearchLimit)
	if err != nil {
		return a.v3ParamError(c, err)
	}
	traces, err := a.reader.FindTraces(c.Request().Context(), p.query)
	if err != nil {
		return a.v3StorageError(c, "find traces", err)
	}
	if len(traces) == 0 {
		return a.v3Error(c, http.StatusNotFound, "No traces found")
	}
	return a.v3WriteTraces(c, traces, p.raw)
}

// v3WriteTraces answers {"result": TracesData} with every trace's resource spans in one
// TracesData, as Jaeger's gateway combines them; adjusted unless raw.
func (a *API) v3WriteTraces(c echo.Context, traces []ptrace.Traces, raw bool) error {
	combined := ptrace.NewTraces()
	for _, td := range traces {
		if !raw {
			td, _ = adjustTrace(td, a.opts.MaxClockSkewAdjust)
		}
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			rss.At(i).CopyTo(combined.ResourceSpans().AppendEmpty())
		}
	}
	var m ptrace.JSONMarshaler
	otlp, err := m.MarshalTraces(combined)
	if err != nil {
		return a.v3StorageError(c, "encode traces", err)
	}
	buf := getBuf()
	defer putBuf(buf)
	*buf = append(*buf, `{"result":`...)
	*buf = append(*buf, otlp...)
	*buf = append(*buf, '}')
	return writeJSON(c, http.StatusOK, *buf)
}

// GET /api/v3/trace-summaries: one summary per matching trace, newest first.
func (a *API) v3TraceSummaries(c echo.Context) error {
	p, err := parseV3Query(c.QueryParams(), a.opts.MaxSearchLimit)
	if err != nil {
		return a.v3ParamError(c, err)
	}
	sums, err := a.traceSummaries(c.Request().Context(), p.query)
	if err != nil {
		return a.v3StorageError(c, "find trace summaries", err)
	}
	buf := getBuf()
	defer putBuf(buf)
	*buf = append(*buf, `{"summaries":[`...)
	for i := range sums {
		if i > 0 {
			*buf = append(*buf, ',')
		}
		*buf = appendV3Summary(*buf, &sums[i])
	}
	*buf = append(*buf, "]}"...)
	return writeJSON(c, http.StatusOK, *buf)
}

// v3Summary is Jaeger's TraceSummary: the store's summary plus the orphan count, which
// needs the spans.
type v3Summary struct {
	storage.TraceSummary
	end     time.Time
	orphans int
}

// traceSummaries computes the summaries of the traces matching q from their spans, so
// that every field, orphans included, comes from one read.
func (a *API) traceSummaries(ctx context.Context, q storage.TraceQuery) ([]v3Summary, error) {
	traces, err := a.reader.FindTraces(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]v3Summary, 0, len(traces))
	for _, td := range traces {
		out = append(out, summarize(td))
	}
	return out, nil
}

// summarize computes a trace's summary from its spans, by storage.TraceSummary's rules.
func summarize(td ptrace.Traces) v3Summary {
	var s v3Summary
	ids := map[pcommon.SpanID]struct{}{}
	services := map[string]*storage.ServiceSummary{}
	var first, last pcommon.Timestamp
	var rootStart pcommon.Timestamp
	spans := flattenSpans(td, nil)
	for _, fs := range spans {
		ids[fs.span.SpanID()] = struct{}{}
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc := noServiceName
		if v, ok := rss.At(i).Resource().Attributes().Get(attrServiceName); ok && v.Str() != "" {
			svc = v.Str()
		}
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sl := sss.At(j).Spans()
			for k := 0; k < sl.Len(); k++ {
				sp := sl.At(k)
				s.TraceID = sp.TraceID()
				s.SpanCount++
				ss := services[svc]
				if ss == nil {
					ss = &storage.ServiceSummary{Name: svc}
					services[svc] = ss
				}
				ss.SpanCount++
				if sp.Status().Code() == ptrace.StatusCodeError {
					s.ErrorCount++
					ss.ErrorCount++
				}
				if first == 0 || sp.StartTimestamp() < first {
					first = sp.StartTimestamp()
				}
				last = max(last, sp.EndTimestamp(), sp.StartTimestamp())
				if sp.ParentSpanID().IsEmpty() {
					if !s.HasRoot || sp.StartTimestamp() < rootStart {
						s.HasRoot, s.RootService, s.RootOperation, rootStart = true, svc, sp.Name(), sp.StartTimestamp()
					}
				} else if _, ok := ids[sp.ParentSpanID()]; !ok {
					s.orphans++
				}
			}
		}
	}
	s.Start, s.end = first.AsTime(), last.AsTime()
	s.Duration = s.end.Sub(s.Start)
	for _, ss := range services {
		s.Services = append(s.Services, *ss)
	}
	slices.SortFunc(s.Services, func(x, y storage.ServiceSummary) int { return cmp.Compare(x.Name, y.Name) })
	return s
}

// appendV3Summary writes a summary as proto3 JSON does: 64-bit times as strings, zero
// values left out.
func appendV3Summary(dst []byte, s *v3Summary) []byte {
	dst = append(dst, `{"traceId":"`...)
	dst = appendHex(dst, s.TraceID[:])
	dst = append(dst, '"')
	if s.RootService != "" {
		dst = append(dst, `,"rootServiceName":`...)
		dst = appendJSONString(dst, s.RootService)
	}
	if s.RootOperation != "" {
		dst = append(dst, `,"rootOperationName":`...)
		dst = appendJSONString(dst, s.RootOperation)
	}
	dst = append(dst, `,"minStartTimeUnixNano":"`...)
	dst = strconv.AppendInt(dst, s.Start.UnixNano(), 10)
	dst = append(dst, `","maxEndTimeUnixNano":"`...)
	dst = strconv.AppendInt(dst, s.end.UnixNano(), 10)
	dst = append(dst, '"')
	dst = appendCount(dst, "spanCount", s.SpanCount)
	dst = appendCount(dst, "errorSpanCount", s.ErrorCount)
	dst = appendCount(dst, "orphanSpanCount", s.orphans)
	dst = append(dst, `,"services":[`...)
	for i, ss := range s.Services {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendJSONString(dst, ss.Name)
		dst = appendCount(dst, "spanCount", ss.SpanCount)
		dst = appendCount(dst, "errorSpanCount", ss.ErrorCount)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

func appendCount(dst []byte, name string, n int) []byte {
	if n == 0 {
		return dst
	}
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return strconv.AppendInt(dst, int64(n), 10)
}
