package query

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/spoortrace/spoor/storage"
)

// DefaultDependenciesLookback is the window of GET /api/dependencies without lookback,
// as in Jaeger.
const DefaultDependenciesLookback = 24 * time.Hour

// GET /api/dependencies?endTs=<ms>&lookback=<ms>: the service graph, in Jaeger's shape
// [{"parent","child","callCount"}]. Jaeger's model has no error count, so none is sent
// (Zipkin's dependencies API carries it). A store without dependencies answers 501, as
// Jaeger does for a disabled store.
func (a *API) jaegerDependencies(c echo.Context) error {
	q := c.QueryParams()
	end, err := parseMillisParam(q, "endTs")
	if err != nil {
		return a.answerParamError(c, err)
	}
	if end.IsZero() {
		end = a.now()
	}
	lookback := DefaultDependenciesLookback
	if q.Get("lookback") != "" {
		ms, err := strconv.ParseInt(q.Get("lookback"), 10, 64)
		if err != nil || ms < 0 || ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
			return a.writeError(c, http.StatusBadRequest,
				"parameter 'lookback' must be a non-negative duration in milliseconds, got "+strconv.Quote(truncate(q.Get("lookback"))))
		}
		lookback = time.Duration(ms) * time.Millisecond
	}
	// The analytics edges see every span before sampling; the store's own counts
	// (stores without analytics) only the stored ones.
	links, fromRollups, err := a.rollupDependencies(c.Request().Context(), end, lookback)
	if err != nil {
		return a.storageError(c, "get dependencies", err)
	}
	if !fromRollups {
		dr, ok := a.reader.(storage.DependencyReader)
		if !ok {
			return a.writeError(c, http.StatusNotImplemented, "service dependencies are not supported by this trace store")
		}
		if links, err = dr.GetDependencies(c.Request().Context(), end, lookback); err != nil {
			return a.storageError(c, "get dependencies", err)
		}
	}
	data := make([]byte, 0, 64*len(links)+2)
	data = append(data, '[')
	for i, l := range links {
		if i > 0 {
			data = append(data, ',')
		}
		data = append(data, `{"parent":`...)
		data = appendJSONString(data, l.Parent)
		data = append(data, `,"child":`...)
		data = appendJSONString(data, l.Child)
		data = append(data, `,"callCount":`...)
		data = strconv.AppendUint(data, l.CallCount, 10)
		data = append(data, '}')
	}
	data = append(data, ']')
	return a.writeEnvelope(c, data, 0, nil)
}

// parseMillisParam reads a unix time in milliseconds; zero time when absent.
func parseMillisParam(q url.Values, name string) (time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 {
		return time.Time{}, badParam("parameter '%s' must be a unix time in milliseconds, got %q", name, truncate(s))
	}
	return time.UnixMilli(ms), nil
}
