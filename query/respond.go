package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// apiError is one element of the envelope's "errors" array (Jaeger's structuredError).
type apiError struct {
	// Code is omitted when zero, as Jaeger does for per-trace errors of an ID-list search.
	Code    int
	Msg     string
	TraceID string
}

// bufPool holds response buffers; a trace's JSON can be megabytes, and allocating that per
// request is the bulk of the garbage the API makes.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledBuffer keeps one huge response from pinning its buffer in the pool forever.
const maxPooledBuffer = 1 << 20

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// appendEnvelope appends {"data":…,"total":…,"limit":0,"offset":0,"errors":…}. data is
// already-encoded JSON; nil data is written as null. limit and offset are always 0, as in
// Jaeger, which never paginates this API.
func appendEnvelope(dst []byte, data []byte, total int, errs []apiError) []byte {
	dst = append(dst, `{"data":`...)
	if data == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, data...)
	}
	dst = append(dst, `,"total":`...)
	dst = strconv.AppendInt(dst, int64(total), 10)
	dst = append(dst, `,"limit":0,"offset":0,"errors":`...)
	if errs == nil {
		return append(dst, "null}"...)
	}
	dst = append(dst, '[')
	for i, e := range errs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		if e.Code != 0 {
			dst = append(dst, `"code":`...)
			dst = strconv.AppendInt(dst, int64(e.Code), 10)
			dst = append(dst, ',')
		}
		dst = append(dst, `"msg":`...)
		dst = appendJSONString(dst, e.Msg)
		if e.TraceID != "" {
			dst = append(dst, `,"traceID":`...)
			dst = appendJSONString(dst, e.TraceID)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// writeJSON sends body, indented when the request asks for ?prettyPrint=true.
func writeJSON(c echo.Context, status int, body []byte) error {
	if pretty, _ := strconv.ParseBool(c.QueryParam("prettyPrint")); pretty {
		var out bytes.Buffer
		if err := json.Indent(&out, body, "", "    "); err != nil {
			// Only our own encoder wrote body, so this is a bug in it, not bad input.
			panic("BUG: query API produced invalid JSON: " + err.Error())
		}
		body = out.Bytes()
	}
	return c.JSONBlob(status, body)
}

// writeEnvelope sends a success envelope.
func (a *API) writeEnvelope(c echo.Context, data []byte, total int, errs []apiError) error {
	buf := getBuf()
	defer putBuf(buf)
	*buf = appendEnvelope(*buf, data, total, errs)
	return writeJSON(c, http.StatusOK, *buf)
}

// writeError sends an envelope with data null and one error carrying the HTTP status.
func (a *API) writeError(c echo.Context, status int, msg string) error {
	body := appendEnvelope(nil, nil, 0, []apiError{{Code: status, Msg: msg}})
	return writeJSON(c, status, body)
}

// storageError answers a failure of the store: the client learns it was the server's
// fault, the log keeps the details.
func (a *API) storageError(c echo.Context, op string, err error) error {
	a.log.Error("query storage failed", zap.String("op", op), zap.String("path", c.Request().URL.Path), zap.Error(err))
	return a.writeError(c, http.StatusInternalServerError, op+": "+err.Error())
}

// handleEchoError writes errors from echo itself (unknown route, wrong method) in the
// envelope shape, so clients of /api see one error format whatever went wrong.
func (a *API) handleEchoError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, err.Error()
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(he.Code)
		}
	}
	if status >= 500 {
		a.log.Error("query request failed", zap.String("path", c.Request().URL.Path), zap.Error(err))
	}
	if werr := a.writeError(c, status, msg); werr != nil {
		a.log.Warn("write error response", zap.Error(werr))
	}
}
