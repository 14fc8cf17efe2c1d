package query

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// DefaultMaxTransformBodyBytes bounds the OTLP JSON file POST /api/transform accepts.
const DefaultMaxTransformBodyBytes = 32 << 20

// POST /api/transform: Jaeger UI's "upload OTLP file". The body is OTLP JSON; the answer
// is its traces in the Jaeger UI JSON, one per trace ID in order of first appearance,
// adjusted as stored traces are. Nothing is stored.
func (a *API) jaegerTransform(c echo.Context) error {
	r := c.Request()
	limit := a.opts.MaxTransformBodyBytes
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, int64(limit)))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return a.writeError(c, http.StatusRequestEntityTooLarge, "request body exceeds "+itoa(limit)+" bytes")
	}
	if err != nil {
		return a.writeError(c, http.StatusBadRequest, "read request body: "+err.Error())
	}
	traces, err := splitOTLPJSON(body)
	if err != nil {
		return a.answerParamError(c, err)
	}
	return a.writeTraces(c, traces, false, nil)
}

// splitOTLPJSON decodes an OTLP JSON body and splits it into one ptrace.Traces per trace
// ID, keeping each span's resource and scope.
func splitOTLPJSON(body []byte) ([]ptrace.Traces, error) {
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(body)
	if err != nil {
		return nil, badParam("cannot decode the body as OTLP JSON: %v", err)
	}
	var out []ptrace.Traces
	index := map[pcommon.TraceID]int{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if sp.TraceID().IsEmpty() {
					return nil, badParam("span %d of scope %d of resource %d has no trace ID", k, j, i)
				}
				n, ok := index[sp.TraceID()]
				if !ok {
					n = len(out)
					index[sp.TraceID()] = n
					out = append(out, ptrace.NewTraces())
				}
				dst := out[n].ResourceSpans()
				// Consecutive spans of one resource and scope stay together.
				if dst.Len() == 0 || !sameOrigin(dst.At(dst.Len()-1), rs, ss) {
					nrs := dst.AppendEmpty()
					rs.Resource().CopyTo(nrs.Resource())
					nrs.SetSchemaUrl(rs.SchemaUrl())
					nss := nrs.ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(nss.Scope())
					nss.SetSchemaUrl(ss.SchemaUrl())
				}
				last := dst.At(dst.Len() - 1).ScopeSpans()
				sp.CopyTo(last.At(last.Len() - 1).Spans().AppendEmpty())
			}
		}
	}
	return out, nil
}

func sameOrigin(dst ptrace.ResourceSpans, rs ptrace.ResourceSpans, ss ptrace.ScopeSpans) bool {
	if !dst.Resource().Attributes().Equal(rs.Resource().Attributes()) {
		return false
	}
	dss := dst.ScopeSpans()
	s := dss.At(dss.Len() - 1).Scope()
	return s.Name() == ss.Scope().Name() && s.Version() == ss.Scope().Version() && s.Attributes().Equal(ss.Scope().Attributes())
}

// POST /api/archive/{traceID}: Spoor has no archive store; Jaeger answers the same
// without one.
func (a *API) jaegerArchive(c echo.Context) error {
	raw, err := pathParam(c.Request().URL.RawPath != "", c.Param("traceID"), "traceID")
	if err != nil {
		return a.answerParamError(c, err)
	}
	if _, err := parseTraceID(raw); err != nil {
		return a.answerParamError(c, err)
	}
	return a.writeError(c, http.StatusNotImplemented, "archive span storage was not configured")
}
