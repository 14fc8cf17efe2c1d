package query

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// Handlers of the Jaeger internal HTTP JSON API (REFERENCE.md §1.2).

// answerParamError turns a parse failure into a 400; anything else is a bug upstream.
func (a *API) answerParamError(c echo.Context, err error) error {
	var pe *paramError
	if errors.As(err, &pe) {
		return a.writeError(c, http.StatusBadRequest, pe.msg)
	}
	return a.writeError(c, http.StatusInternalServerError, err.Error())
}

// GET /api/services
func (a *API) jaegerServices(c echo.Context) error {
	services, err := a.reader.GetServices(c.Request().Context())
	if err != nil {
		return a.storageError(c, "get services", err)
	}
	return a.writeEnvelope(c, appendJSONStrings(nil, services), len(services), nil)
}

// GET /api/services/{service}/operations: the legacy form Grafana still calls; names of
// every span kind, each once.
func (a *API) jaegerServiceOperations(c echo.Context) error {
	service, err := pathParam(c.Request().URL.RawPath != "", c.Param("service"), "service")
	if err != nil {
		return a.answerParamError(c, err)
	}
	ops, err := a.reader.GetOperations(c.Request().Context(), storage.OperationQuery{ServiceName: service})
	if err != nil {
		return a.storageError(c, "get operations", err)
	}
	names := make([]string, 0, len(ops))
	seen := make(map[string]struct{}, len(ops))
	for _, op := range ops {
		if _, dup := seen[op.Name]; dup {
			continue
		}
		seen[op.Name] = struct{}{}
		names = append(names, op.Name)
	}
	return a.writeEnvelope(c, appendJSONStrings(nil, names), len(names), nil)
}

// GET /api/operations?service=&spanKind=
func (a *API) jaegerOperations(c echo.Context) error {
	service := c.QueryParam("service")
	if service == "" {
		return a.writeError(c, http.StatusBadRequest, "parameter 'service' is required")
	}
	kind, err := parseSpanKind(c.QueryParam("spanKind"))
	if err != nil {
		return a.answerParamError(c, err)
	}
	ops, err := a.reader.GetOperations(c.Request().Context(), storage.OperationQuery{ServiceName: service, SpanKind: kind})
	if err != nil {
		return a.storageError(c, "get operations", err)
	}
	data := make([]byte, 0, 64*len(ops)+2)
	data = append(data, '[')
	for i, op := range ops {
		if i > 0 {
			data = append(data, ',')
		}
		data = append(data, `{"name":`...)
		data = appendJSONString(data, op.Name)
		data = append(data, `,"spanKind":`...)
		data = appendJSONString(data, op.SpanKind)
		data = append(data, '}')
	}
	data = append(data, ']')
	return a.writeEnvelope(c, data, len(ops), nil)
}

// GET /api/traces/{traceID}?start=&end=&raw=
func (a *API) jaegerTrace(c echo.Context) error {
	raw, err := pathParam(c.Request().URL.RawPath != "", c.Param("traceID"), "traceID")
	if err != nil {
		return a.answerParamError(c, err)
	}
	id, err := parseTraceID(raw)
	if err != nil {
		return a.answerParamError(c, err)
	}
	q := c.QueryParams()
	// start and end are hints for stores that partition by time; ours finds a trace
	// by ID alone, but a malformed hint is still the client's mistake to hear about.
	for _, name := range []string{"start", "end"} {
		if _, _, err := parseMicros(q, name); err != nil {
			return a.answerParamError(c, err)
		}
	}
	rawTrace, err := parseBoolParam(q, "raw")
	if err != nil {
		return a.answerParamError(c, err)
	}
	td, err := a.reader.GetTrace(c.Request().Context(), id)
	if errors.Is(err, storage.ErrTraceNotFound) {
		return a.writeError(c, http.StatusNotFound, "trace not found")
	}
	if err != nil {
		return a.storageError(c, "get trace "+traceIDString(id), err)
	}
	return a.writeTraces(c, []ptrace.Traces{td}, rawTrace, nil)
}

// GET /api/traces: a search, or, with traceID parameters, a fetch of those traces.
func (a *API) jaegerSearch(c echo.Context) error {
	p, err := parseSearchParams(c.QueryParams(), a.now(), a.opts.SearchLookback, a.opts.MaxSearchLimit)
	if err != nil {
		return a.answerParamError(c, err)
	}
	ctx := c.Request().Context()
	if len(p.traceIDs) == 0 {
		traces, err := a.reader.FindTraces(ctx, p.query)
		if err != nil {
			return a.storageError(c, "find traces", err)
		}
		return a.writeTraces(c, traces, p.raw, nil)
	}

	traces := make([]ptrace.Traces, 0, len(p.traceIDs))
	var errs []apiError
	seen := make(map[[16]byte]struct{}, len(p.traceIDs))
	for _, id := range p.traceIDs {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		td, err := a.reader.GetTrace(ctx, id)
		if errors.Is(err, storage.ErrTraceNotFound) {
			// Jaeger reports a missing trace of the list in errors, without a code, and
			// still answers 200 with the traces it found.
			errs = append(errs, apiError{Msg: storage.ErrTraceNotFound.Error(), TraceID: traceIDString(id)})
			continue
		}
		if err != nil {
			return a.storageError(c, "get trace "+traceIDString(id), err)
		}
		traces = append(traces, td)
	}
	return a.writeTraces(c, traces, p.raw, errs)
}

// writeTraces answers with the traces as a Jaeger UI JSON array, encoded straight into one
// pooled buffer.
func (a *API) writeTraces(c echo.Context, traces []ptrace.Traces, raw bool, errs []apiError) error {
	data := getBuf()
	defer putBuf(data)
	var cv jaegerConverter
	*data = append(*data, '[')
	for i, td := range traces {
		if i > 0 {
			*data = append(*data, ',')
		}
		cv.warnings = nil
		if !raw {
			var adj spanAdjustments
			td, adj = adjustTrace(td, a.opts.MaxClockSkewAdjust)
			cv.warnings = adj.warnings
		}
		*data = cv.appendTrace(*data, td, raw)
	}
	*data = append(*data, ']')
	// total stays 0 for traces, as in Jaeger: it is only set for services and operations.
	return a.writeEnvelope(c, *data, 0, errs)
}
