package query

import (
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/storage"
)

// Defaults for Options fields left zero.
const (
	// DefaultMaxQueryStringBytes bounds the raw query string. Jaeger UI's tag filters travel
	// in it as JSON, so it is generous; a search never needs more.
	DefaultMaxQueryStringBytes = 16 << 10
	// DefaultMaxHeaderBytes bounds the request line's headers, counted as net/http does.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxSearchLimit is the largest `limit` a search accepts: Jaeger UI's own maximum.
	DefaultMaxSearchLimit = 1500
	// DefaultSearchLookback is how far back a search looks when it gives no start, as in Jaeger.
	DefaultSearchLookback = 48 * time.Hour
	// DefaultMaxClockSkewAdjust is the largest shift the clock skew adjuster applies. Hosts
	// kept in time by NTP are milliseconds apart; a larger gap is a broken clock, better
	// reported (a span warning) than papered over.
	DefaultMaxClockSkewAdjust = time.Second
)

// Response compression: the fastest level already shrinks trace JSON about tenfold.
const (
	gzipLevel     = 1
	gzipMinLength = 1024
)

// Options configures an API. The zero value is usable.
type Options struct {
	// Logger receives storage failures (the client sees a 500 with the error message).
	// Nil means zap.NewNop().
	Logger *zap.Logger
	// MaxQueryStringBytes: longer query strings are refused with 414.
	MaxQueryStringBytes int
	// MaxHeaderBytes: larger header sets are refused with 431. Server() also sets it as
	// http.Server.MaxHeaderBytes, so a header flood is cut off while it is being read.
	MaxHeaderBytes int
	// MaxSearchLimit: a search asking for more traces is refused with 400.
	MaxSearchLimit int
	// SearchLookback is the search window when a search gives no start.
	SearchLookback time.Duration
	// MaxClockSkewAdjust is the largest shift the clock skew adjuster applies to a span
	// (see adjust.go); zero means DefaultMaxClockSkewAdjust, negative turns it off.
	MaxClockSkewAdjust time.Duration
	// MaxTransformBodyBytes bounds the body of POST /api/transform; larger ones get 413.
	MaxTransformBodyBytes int
	// AutocompleteKeys are the tag keys Zipkin's GET /api/v2/autocompleteKeys lists (Zipkin's
	// AUTOCOMPLETE_KEYS); none by default, as in Zipkin.
	AutocompleteKeys []string
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxQueryStringBytes <= 0 {
		o.MaxQueryStringBytes = DefaultMaxQueryStringBytes
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxSearchLimit <= 0 {
		o.MaxSearchLimit = DefaultMaxSearchLimit
	}
	if o.MaxTransformBodyBytes <= 0 {
		o.MaxTransformBodyBytes = DefaultMaxTransformBodyBytes
	}
	if o.MaxClockSkewAdjust == 0 {
		o.MaxClockSkewAdjust = DefaultMaxClockSkewAdjust
	}
	if o.SearchLookback <= 0 {
		o.SearchLookback = DefaultSearchLookback
	}
	return o
}

// API is the query HTTP API. Create it with New; it is safe for concurrent use.
type API struct {
	reader storage.Reader
	opts   Options
	log    *zap.Logger
	e      *echo.Echo
	// now is the clock searches default their window from; tests pin it.
	now func() time.Time
	// scanLimit is the store's ScanLimit for Spoor searches (spoorScanLimit; tests lower it).
	scanLimit int

	// zipkinServiceCount is the number of services the last GET /api/v2/services saw:
	// Zipkin lets clients cache names only once there are more than three.
	zipkinServiceCount atomic.Int64

	ready atomic.Bool
	// everReady tells "starting" from "stopping" in the /healthz reason.
	everReady atomic.Bool
}

// New builds the API over reader. It starts nothing: serve Handler() or Server().
// The API is not ready until SetReady(true).
func New(reader storage.Reader, opts Options) *API {
	if reader == nil {
		panic("BUG: query.New called with a nil storage.Reader")
	}
	opts = opts.withDefaults()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	a := &API{reader: reader, opts: opts, log: opts.Logger, e: e, now: time.Now, scanLimit: spoorScanLimit}
	if r, ok := reader.(storage.AttributeValueReader); ok {
		// The keys whose values Zipkin's remoteServices and autocompleteValues list.
		r.CatalogAttributeValues(append(slices.Clone(remoteServiceKeys), opts.AutocompleteKeys...)...)
	}
	e.HTTPErrorHandler = a.handleEchoError
	e.Pre(a.limitRequest)
	// Trace JSON is repetitive and often megabytes; Jaeger's query service compresses it
	// too. Small answers (services, errors) are not worth the CPU.
	e.Use(middleware.GzipWithConfig(middleware.GzipConfig{Level: gzipLevel, MinLength: gzipMinLength}))
	a.routes()
	return a
}

// Handler returns the HTTP handler serving every route of the API.
func (a *API) Handler() http.Handler { return a.e }

// Server returns an http.Server for addr serving Handler() with the API's header limit and
// timeouts that keep slow clients from holding connections forever. The caller starts and
// shuts it down.
func (a *API) Server(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           a.e,
		MaxHeaderBytes:    a.opts.MaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// SetReady flips the readiness reported by GET /healthz. The owner sets it once every
// component behind the API has started, and clears it when shutting down.
func (a *API) SetReady(ready bool) {
	if ready {
		a.everReady.Store(true)
	}
	a.ready.Store(ready)
}

func (a *API) healthz(c echo.Context) error {
	if a.ready.Load() {
		return c.JSONBlob(http.StatusOK, []byte(`{"status":"ok"}`))
	}
	reason := "starting"
	if a.everReady.Load() {
		reason = "shutting down"
	}
	buf := append([]byte(`{"status":"unavailable","reason":`), appendJSONString(nil, reason)...)
	return c.JSONBlob(http.StatusServiceUnavailable, append(buf, '}'))
}

// limitRequest refuses oversized requests before routing, so no handler ever parses them.
func (a *API) limitRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if n := len(r.URL.RawQuery); n > a.opts.MaxQueryStringBytes {
			return a.writeError(c, http.StatusRequestURITooLong,
				"query string of "+itoa(n)+" bytes exceeds the limit of "+itoa(a.opts.MaxQueryStringBytes))
		}
		if n := headerBytes(r.Header); n > a.opts.MaxHeaderBytes {
			return a.writeError(c, http.StatusRequestHeaderFieldsTooLarge,
				"request headers of "+itoa(n)+" bytes exceed the limit of "+itoa(a.opts.MaxHeaderBytes))
		}
		return next(c)
	}
}

// headerBytes counts headers the way they travel: "Key: value\r\n" per value.
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
