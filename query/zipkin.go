package query

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/storage"
)

// Handlers of the Zipkin v2 query API (REFERENCE.md §1.1), as Zipkin's server
// (ZipkinQueryApiV2) answers it: JSON bodies, errors as plain text with the status (400
// for bad input, 404 "<id> not found", 500 for the store's failures).
//
// Zipkin compares service and span names lowercased and returns them lowercased; Spoor
// stores them as sent. Names are therefore listed lowercased (merged when two differ only
// in case), and a search by name is resolved against the catalogs to the stored names.
//
// Search semantics: every condition of /api/v2/traces (service, remote service, span name,
// each annotationQuery term, duration, the endTs/lookback window) must hold on one and the
// same span, as zipkin2-api.yaml says ("a span in the trace must match all of these").
// The store is asked for the conditions it can decide (service, span name, plain tag
// values, duration, window), and every returned trace is checked again, exactly, on its
// Zipkin form (annotation values, tag keys, remote service names and lowercased names
// exist only there), paging on with the store's cursor until the limit is met.

const (
	// zipkinNamesMaxAge is Zipkin's zipkin.query.names-max-age.
	zipkinNamesMaxAge = 300
	// zipkinScanPages bounds how many store pages one search reads when the exact check
	// throws matches away, so that a rare term cannot make a search read the whole store.
	zipkinScanPages = 20
	// sampleTraces is how many recent traces a fallback catalog (attribute values, remote
	// services) is built from when the store has no catalog of its own.
	sampleTraces = 200
	// low64ScanTraces is how many recent trace IDs the fallback for 64-bit lookups checks
	// when the store cannot find traces by the low half of their ID, listed by a
	// storage.TraceIDScanner (Badger: a trace table read per ~100 traces, about 0.13 ms
	// CPU per 1,000 traces listed); through a search, which reads each trace's summary
	// (4.5 ms per 1,000), low64SearchTraces.
	low64ScanTraces   = 20_000
	low64SearchTraces = 10_000
)

// Zipkin span tags that the translator derives rather than copies from one attribute;
// the store cannot be asked for them, only the exact check decides them.
var zipkinDerivedTags = map[string]struct{}{
	"error": {}, "otel.status_code": {}, "otel.status_description": {}, "span.kind": {},
	"w3c.tracestate": {}, "http.status_code": {}, "otel.library.name": {}, "otel.library.version": {},
	"otel.scope.name": {}, "otel.scope.version": {}, "network.local.address": {}, "network.peer.address": {},
	"net.host.port": {}, "net.peer.port": {}, "net.host.ip": {}, "net.peer.ip": {},
	"service.peer.name": {}, "peer.service": {}, "zipkin.service_name_source": {},
}

// Attributes the translator reads a span's remote service name from.
var remoteServiceKeys = []string{"service.peer.name", "peer.service"}

// writeZipkinError answers in Zipkin's error shape: the message as plain text.
func (a *API) writeZipkinError(c echo.Context, status int, msg string) error {
	return c.Blob(status, echo.MIMETextPlainCharsetUTF8, []byte(msg))
}

func (a *API) zipkinParamError(c echo.Context, err error) error {
	var pe *paramError
	if errors.As(err, &pe) {
		return a.writeZipkinError(c, http.StatusBadRequest, pe.msg)
	}
	return a.zipkinStorageError(c, "query", err)
}

func (a *API) zipkinStorageError(c echo.Context, op string, err error) error {
	if storage.IsInvalidInput(err) {
		return a.writeZipkinError(c, http.StatusBadRequest, err.Error())
	}
	a.log.Error("query storage failed", zap.String("op", op), zap.String("path", c.Request().URL.Path), zap.Error(err))
	return a.writeZipkinError(c, http.StatusInternalServerError, op+": "+err.Error())
}

// writeZipkinNames answers a list of names with Zipkin's caching rule: once more than
// three services exist, clients may cache names for five minutes.
func (a *API) writeZipkinNames(c echo.Context, names []string) error {
	if a.zipkinServiceCount.Load() > 3 {
		c.Response().Header().Set("Cache-Control", "max-age="+strconv.Itoa(zipkinNamesMaxAge)+", must-revalidate")
	}
	return writeJSON(c, http.StatusOK, appendJSONStrings(nil, names))
}

// lowerNames lowercases, sorts and deduplicates names; never nil.
func lowerNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.ToLower(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// GET /api/v2/services
func (a *API) zipkinServices(c echo.Context) error {
	services, err := a.reader.GetServices(c.Request().Context())
	if err != nil {
		return a.zipkinStorageError(c, "get services", err)
	}
	names := lowerNames(services)
	a.zipkinServiceCount.Store(int64(len(names)))
	return a.writeZipkinNames(c, names)
}

// resolveServices returns the stored service names that Zipkin would show as lower.
func (a *API) resolveServices(ctx context.Context, lower string) ([]string, error) {
	services, err := a.reader.GetServices(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range services {
		if strings.ToLower(s) == lower {
			out = append(out, s)
		}
	}
	return out, nil
}

func requiredParam(c echo.Context, name string) (string, error) {
	v := c.QueryParam(name)
	if v == "" {
		return "", badParam("%s is required", name)
	}
	return v, nil
}

// GET /api/v2/spans?serviceName=
func (a *API) zipkinSpanNames(c echo.Context) error {
	service, err := requiredParam(c, "serviceName")
	if err != nil {
		return a.zipkinParamError(c, err)
	}
	ctx := c.Request().Context()
	services, err := a.resolveServices(ctx, strings.ToLower(service))
	if err != nil {
		return a.zipkinStorageError(c, "get services", err)
	}
	var names []string
	for _, s := range services {
		ops, err := a.reader.GetOperations(ctx, storage.OperationQuery{ServiceName: s})
		if err != nil {
			return a.zipkinStorageError(c, "get span names", err)
		}
		for _, op := range ops {
			names = append(names, op.Name)
		}
	}
	return a.writeZipkinNames(c, lowerNames(names))
}

// GET /api/v2/remoteServices?serviceName=
func (a *API) zipkinRemoteServices(c echo.Context) error {
	service, err := requiredParam(c, "serviceName")
	if err != nil {
		return a.zipkinParamError(c, err)
	}
	ctx := c.Request().Context()
	services, err := a.resolveServices(ctx, strings.ToLower(service))
	if err != nil {
		return a.zipkinStorageError(c, "get services", err)
	}
	var names []string
	for _, s := range services {
		vals, err := a.attributeValues(ctx, s, remoteServiceKeys)
		if err != nil {
			return a.zipkinStorageError(c, "get remote services", err)
		}
		names = append(names, vals...)
	}
	return a.writeZipkinNames(c, lowerNames(names))
}

// GET /api/v2/autocompleteKeys: the configured keys, as Zipkin's AUTOCOMPLETE_KEYS.
func (a *API) zipkinAutocompleteKeys(c echo.Context) error {
	return a.writeZipkinNames(c, a.opts.AutocompleteKeys)
}

// GET /api/v2/autocompleteValues?key=
func (a *API) zipkinAutocompleteValues(c echo.Context) error {
	key, err := requiredParam(c, "key")
	if err != nil {
		return a.zipkinParamError(c, err)
	}
	vals, err := a.attributeValues(c.Request().Context(), "", []string{key})
	if err != nil {
		return a.zipkinStorageError(c, "get autocomplete values", err)
	}
	slices.Sort(vals)
	return a.writeZipkinNames(c, slices.Compact(vals))
}

// attributeValues returns the values of keys on spans of service (any when empty): from
// the store's catalog when it has one, else from the newest sampleTraces traces of the
// last day, so the answer is a sample, not a census.
func (a *API) attributeValues(ctx context.Context, service string, keys []string) ([]string, error) {
	if r, ok := a.reader.(storage.AttributeValueReader); ok {
		var out []string
		for _, k := range keys {
			vals, err := r.GetAttributeValues(ctx, storage.AttributeValuesQuery{Key: k, ServiceName: service})
			if err != nil {
				return nil, err
			}
			out = append(out, vals...)
		}
		return out, nil
	}
	now := a.now()
	traces, err := a.reader.FindTraces(ctx, storage.TraceQuery{
		ServiceName: service, StartTimeMin: now.Add(-DefaultZipkinLookback), StartTimeMax: now, Limit: sampleTraces,
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]struct{}{}
	collect := func(m pcommon.Map) {
		for _, k := range keys {
			if v, ok := m.Get(k); ok {
				seen[v.AsString()] = struct{}{}
			}
		}
	}
	for _, td := range traces {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			rs := rss.At(i)
			if service != "" {
				if v, ok := rs.Resource().Attributes().Get(attrServiceName); !ok || v.AsString() != service {
					continue
				}
			}
			collect(rs.Resource().Attributes())
			sss := rs.ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				collect(sss.At(j).Scope().Attributes())
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					collect(spans.At(k).Attributes())
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	return out, nil
}

// GET /api/v2/trace/{traceId}
func (a *API) zipkinTrace(c echo.Context) error {
	raw := c.Param("traceId")
	id, err := parseZipkinTraceID(raw)
	if err != nil {
		return a.zipkinParamError(c, err)
	}
	spans, err := a.zipkinTraceSpans(c.Request().Context(), id)
	if err != nil {
		return a.zipkinStorageError(c, "get trace "+raw, err)
	}
	if len(spans) == 0 {
		return a.writeZipkinError(c, http.StatusNotFound, raw+" not found")
	}
	buf := getBuf()
	defer putBuf(buf)
	if *buf, err = appendZipkinSpans(*buf, spans); err != nil {
		return a.zipkinStorageError(c, "encode trace "+raw, err)
	}
	return writeJSON(c, http.StatusOK, *buf)
}

// GET /api/v2/traceMany?traceIds=a,b
func (a *API) zipkinTraceMany(c echo.Context) error {
	ids, err := parseTraceIDList(c.QueryParam("traceIds"))
	if err != nil {
		return a.zipkinParamError(c, err)
	}
	ctx := c.Request().Context()
	var traces [][]*zipkinmodel.SpanModel
	for _, id := range ids {
		spans, err := a.zipkinTraceSpans(ctx, id)
		if err != nil {
			return a.zipkinStorageError(c, "get trace", err)
		}
		if len(spans) > 0 {
			traces = append(traces, spans)
		}
	}
	return a.writeZipkinTraces(c, traces)
}

// zipkinTraceSpans returns the spans Zipkin returns for id: for a 128-bit ID, that
// trace's. For a 64-bit ID, Zipkin's lookup by the low 64 bits: with a store that can find
// traces by their low half (storage.TraceIDLow64Finder), the spans of the 64-bit trace and
// of every 128-bit trace with that low half, together; otherwise the 64-bit trace when
// there is one (one direct read: zipkin-go's default IDs), else the 128-bit traces with
// that low half among the newest low64ScanTraces (or low64SearchTraces) traces of the last
// day. Empty when none.
func (a *API) zipkinTraceSpans(ctx context.Context, id zipkinTraceID) ([]*zipkinmodel.SpanModel, error) {
	all := ptrace.NewTraces()
	read := func(tid pcommon.TraceID) (bool, error) {
		td, err := a.reader.GetTrace(ctx, tid)
		if errors.Is(err, storage.ErrTraceNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		td.ResourceSpans().MoveAndAppendTo(all.ResourceSpans())
		return true, nil
	}
	found, err := read(id.id)
	if err != nil {
		return nil, err
	}
	if id.only64 {
		low := binary.BigEndian.Uint64(id.id[8:])
		var more []pcommon.TraceID
		if f, ok := a.reader.(storage.TraceIDLow64Finder); ok {
			more, err = f.FindTraceIDsByLow64(ctx, low)
		} else if !found {
			more, err = a.scanLow64(ctx, low)
		}
		if err != nil {
			return nil, err
		}
		for _, m := range more {
			if m == id.id {
				continue
			}
			if _, err := read(m); err != nil {
				return nil, err
			}
		}
	}
	if all.ResourceSpans().Len() == 0 {
		return nil, nil
	}
	return zipkinSpans(all)
}

// scanLow64 is the fallback of a store without TraceIDLow64Finder: the IDs of the newest
// low64ScanTraces traces of the last day whose low half is low, listed from the store's
// index alone when it is a storage.TraceIDScanner; else of the newest low64SearchTraces,
// found by a search.
func (a *API) scanLow64(ctx context.Context, low uint64) ([]pcommon.TraceID, error) {
	now := a.now()
	if sc, ok := a.reader.(storage.TraceIDScanner); ok {
		var out []pcommon.TraceID
		n := 0
		err := sc.ScanTraceIDs(ctx, now.Add(-DefaultZipkinLookback), func(id pcommon.TraceID) bool {
			if binary.BigEndian.Uint64(id[8:]) == low && !slices.Contains(out, id) {
				out = append(out, id)
			}
			n++
			return n < low64ScanTraces
		})
		return out, err
	}
	ids, err := a.reader.FindTraceIDs(ctx, storage.TraceQuery{
		StartTimeMin: now.Add(-DefaultZipkinLookback), StartTimeMax: now, Limit: low64SearchTraces,
	})
	if err != nil {
		return nil, err
	}
	var out []pcommon.TraceID
	for _, id := range ids {
		if binary.BigEndian.Uint64(id[8:]) == low {
			out = append(out, id)
		}
	}
	return out, nil
}

// GET /api/v2/traces
func (a *API) zipkinSearch(c echo.Context) error {
	zq, err := parseZipkinQuery(c.QueryParams(), a.now(), a.opts.MaxSearchLimit)
	if err != nil {
		return a.zipkinParamError(c, err)
	}
	traces, err := a.findZipkinTraces(c.Request().Context(), zq)
	if err != nil {
		return a.zipkinStorageError(c, "find traces", err)
	}
	return a.writeZipkinTraces(c, traces)
}

func (a *API) writeZipkinTraces(c echo.Context, traces [][]*zipkinmodel.SpanModel) error {
	buf := getBuf()
	defer putBuf(buf)
	*buf = append(*buf, '[')
	var err error
	for i, spans := range traces {
		if i > 0 {
			*buf = append(*buf, ',')
		}
		if *buf, err = appendZipkinSpans(*buf, spans); err != nil {
			return a.zipkinStorageError(c, "encode traces", err)
		}
	}
	*buf = append(*buf, ']')
	return writeJSON(c, http.StatusOK, *buf)
}

// findZipkinTraces runs a search: the store's query narrows, matchZipkinTrace decides.
func (a *API) findZipkinTraces(ctx context.Context, zq zipkinQuery) ([][]*zipkinmodel.SpanModel, error) {
	tq, exact, none, err := a.zipkinStoreQuery(ctx, zq)
	if err != nil || none {
		return [][]*zipkinmodel.SpanModel{}, err
	}
	out := make([][]*zipkinmodel.SpanModel, 0, zq.limit)
	consider := func(traces []ptrace.Traces) error {
		for _, td := range traces {
			spans, err := zipkinSpans(td)
			if err != nil {
				return err
			}
			if zq.matchTrace(spans) {
				out = append(out, spans)
				if len(out) == zq.limit {
					return nil
				}
			}
		}
		return nil
	}
	searcher, ok := a.reader.(storage.Searcher)
	if !ok {
		if !exact {
			tq.Limit = min(4*zq.limit, a.opts.MaxSearchLimit)
		}
		traces, err := a.reader.FindTraces(ctx, tq)
		if err != nil {
			return nil, err
		}
		return out, consider(traces)
	}
	tq.Limit = zq.limit
	for page := 0; page < zipkinScanPages; page++ {
		res, err := searcher.SearchTraces(ctx, tq, storage.WithSpans)
		if err != nil {
			return nil, err
		}
		if err := consider(res.Traces); err != nil {
			return nil, err
		}
		if len(out) == zq.limit || res.NextCursor == "" {
			break
		}
		tq.Cursor = res.NextCursor
		// Matches are being thrown away: read bigger pages from now on.
		tq.Limit = min(max(2*tq.Limit, 50), a.opts.MaxSearchLimit)
	}
	return out, nil
}

// zipkinStoreQuery is the part of zq the store can decide. exact reports that it decides
// all of zq (the exact check will then throw nothing away); none that nothing can match
// (a service or span name that is not stored).
func (a *API) zipkinStoreQuery(ctx context.Context, zq zipkinQuery) (tq storage.TraceQuery, exact, none bool, err error) {
	exact = zq.remoteServiceName == ""
	start := zq.endTs.Add(-zq.lookback)
	// One microsecond of slack each side: Zipkin compares rounded microseconds.
	tq.StartTimeMin, tq.StartTimeMax = start.Add(-time.Microsecond), zq.endTs.Add(time.Microsecond)
	if zq.minDuration > 0 {
		tq.DurationMin = time.Duration(zq.minDuration)*time.Microsecond - 500*time.Nanosecond
	}
	if zq.maxDuration > 0 {
		tq.DurationMax = time.Duration(zq.maxDuration)*time.Microsecond + 499*time.Nanosecond
	}
	if zq.serviceName != "" {
		services, err := a.resolveServices(ctx, zq.serviceName)
		if err != nil {
			return tq, false, false, err
		}
		switch len(services) {
		case 0:
			return tq, false, true, nil
		case 1:
			tq.ServiceName = services[0]
		default:
			exact = false
		}
	}
	if zq.spanName != "" {
		resolved := false
		if tq.ServiceName != "" {
			ops, err := a.reader.GetOperations(ctx, storage.OperationQuery{ServiceName: tq.ServiceName})
			if err != nil {
				return tq, false, false, err
			}
			var names []string
			for _, op := range ops {
				if strings.ToLower(op.Name) == zq.spanName {
					names = append(names, op.Name)
				}
			}
			names = slices.Compact(names)
			switch len(names) {
			case 0:
				return tq, false, true, nil
			case 1:
				tq.OperationName, resolved = names[0], true
			}
		}
		exact = exact && resolved
	}
	for _, t := range zq.annotations {
		_, derived := zipkinDerivedTags[t.key]
		if t.value == "" || derived || strings.HasPrefix(t.key, "otlp.link.") {
			exact = false
			continue
		}
		if tq.Attributes == nil {
			tq.Attributes = map[string]string{}
		}
		tq.Attributes[t.key] = t.value
		// A resource attribute overridden by a span attribute of the same key shows the
		// span's value in Zipkin; only the exact check sees that.
		exact = false
	}
	return tq, exact, false, nil
}

// matchTrace reports whether one span of the trace satisfies every condition.
func (zq *zipkinQuery) matchTrace(spans []*zipkinmodel.SpanModel) bool {
	for _, s := range spans {
		if zq.matchSpan(s) {
			return true
		}
	}
	return false
}

func (zq *zipkinQuery) matchSpan(s *zipkinmodel.SpanModel) bool {
	ts := zipkinTimestampMicros(s.Timestamp)
	if ts == 0 || ts < zq.endTs.Add(-zq.lookback).UnixMilli()*1000 || ts > zq.endTs.UnixMilli()*1000 {
		return false
	}
	if zq.serviceName != "" && (s.LocalEndpoint == nil || strings.ToLower(s.LocalEndpoint.ServiceName) != zq.serviceName) {
		return false
	}
	if zq.remoteServiceName != "" && (s.RemoteEndpoint == nil || strings.ToLower(s.RemoteEndpoint.ServiceName) != zq.remoteServiceName) {
		return false
	}
	if zq.spanName != "" && strings.ToLower(s.Name) != zq.spanName {
		return false
	}
	if zq.minDuration > 0 || zq.maxDuration > 0 {
		d := zipkinDurationMicros(s.Duration)
		if d < zq.minDuration || (zq.maxDuration > 0 && d > zq.maxDuration) {
			return false
		}
	}
	for _, t := range zq.annotations {
		if t.value != "" {
			if v, ok := s.Tags[t.key]; !ok || v != t.value {
				return false
			}
			continue
		}
		if _, ok := s.Tags[t.key]; ok {
			continue
		}
		found := false
		for _, an := range s.Annotations {
			if an.Value == t.key {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// GET /api/v2/dependencies?endTs=&lookback=: Zipkin's DependencyLink JSON, errorCount
// only when non-zero, names lowercased.
func (a *API) zipkinDependencies(c echo.Context) error {
	end, lookback, err := parseZipkinWindow(c.QueryParams(), a.now(), true)
	if err != nil {
		return a.zipkinParamError(c, err)
	}
	// The analytics edges (every span, before sampling) when the store has them, as
	// /api/dependencies answers; else the store's own counts of stored spans.
	links, fromRollups, err := a.rollupDependencies(c.Request().Context(), end, lookback)
	if err != nil {
		return a.zipkinStorageError(c, "get dependencies", err)
	}
	if !fromRollups {
		dr, ok := a.reader.(storage.DependencyReader)
		if !ok {
			return a.writeZipkinError(c, http.StatusNotImplemented, "service dependencies are not supported by this trace store")
		}
		if links, err = dr.GetDependencies(c.Request().Context(), end, lookback); err != nil {
			return a.zipkinStorageError(c, "get dependencies", err)
		}
	}
	merged := make([]storage.DependencyLink, 0, len(links))
	for _, l := range links {
		l.Parent, l.Child = strings.ToLower(l.Parent), strings.ToLower(l.Child)
		merged = append(merged, l)
	}
	slices.SortFunc(merged, func(x, y storage.DependencyLink) int {
		if c := strings.Compare(x.Parent, y.Parent); c != 0 {
			return c
		}
		return strings.Compare(x.Child, y.Child)
	})
	data := make([]byte, 0, 80*len(merged)+2)
	data = append(data, '[')
	for i := 0; i < len(merged); {
		l := merged[i]
		for i++; i < len(merged) && merged[i].Parent == l.Parent && merged[i].Child == l.Child; i++ {
			l.CallCount += merged[i].CallCount
			l.ErrorCount += merged[i].ErrorCount
		}
		if len(data) > 1 {
			data = append(data, ',')
		}
		data = append(data, `{"parent":`...)
		data = appendJSONString(data, l.Parent)
		data = append(data, `,"child":`...)
		data = appendJSONString(data, l.Child)
		data = append(data, `,"callCount":`...)
		data = strconv.AppendUint(data, l.CallCount, 10)
		if l.ErrorCount > 0 {
			data = append(data, `,"errorCount":`...)
			data = strconv.AppendUint(data, l.ErrorCount, 10)
		}
		data = append(data, '}')
	}
	data = append(data, ']')
	return writeJSON(c, http.StatusOK, data)
}
