package query

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/spoortrace/spoor/storage"
)

// paramError is a client mistake in one parameter; handlers answer it with 400 and msg.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

func badParam(format string, args ...any) error {
	return &paramError{msg: fmt.Sprintf(format, args...)}
}

// parseTraceID reads a trace ID as Jaeger does: 1 to 32 hex digits, left-padded with zeros
// to 128 bits (so a 64-bit Zipkin ID is the low half), or, as Jaeger v2 also accepts, the
// base64 of the 16 bytes (standard or URL alphabet, padded or not). Hex is tried first: a
// string that is both is hex. The all-zero ID is invalid in OTLP and never stored, so it is
// refused rather than looked up.
func parseTraceID(s string) (pcommon.TraceID, error) {
	var id pcommon.TraceID
	if ok := parseHexTraceID(s, &id); !ok {
		if !parseBase64TraceID(s, &id) {
			return pcommon.TraceID{}, badParam("malformed trace ID %q: want 1 to 32 hex digits or the base64 of 16 bytes", truncate(s))
		}
	}
	if id.IsEmpty() {
		return pcommon.TraceID{}, badParam("malformed trace ID %q: the all-zero trace ID is invalid", truncate(s))
	}
	return id, nil
}

func parseHexTraceID(s string, id *pcommon.TraceID) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	var hi, lo uint64
	split := max(len(s)-16, 0)
	for i := 0; i < len(s); i++ {
		v, ok := hexValue(s[i])
		if !ok {
			return false
		}
		if i < split {
			hi = hi<<4 | uint64(v)
		} else {
			lo = lo<<4 | uint64(v)
		}
	}
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return true
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

var base64Encodings = []*base64.Encoding{
	base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
}

func parseBase64TraceID(s string, id *pcommon.TraceID) bool {
	// 16 bytes are 22 characters unpadded, 24 padded; anything else cannot be an ID, and
	// checking first keeps a long garbage string from being decoded four times.
	if len(s) != 22 && len(s) != 24 {
		return false
	}
	var buf [18]byte
	for _, enc := range base64Encodings {
		n, err := enc.Decode(buf[:], []byte(s))
		if err == nil && n == 16 {
			copy(id[:], buf[:16])
			return true
		}
	}
	return false
}

// appendTraceID writes a trace ID as Jaeger's model.TraceID.String does: 16 hex digits
// when the high half is zero (a 64-bit ID), else all 32.
func appendTraceID(dst []byte, id pcommon.TraceID) []byte {
	if binary.BigEndian.Uint64(id[:8]) == 0 {
		return appendHex(dst, id[8:])
	}
	return appendHex(dst, id[:])
}

func traceIDString(id pcommon.TraceID) string { return string(appendTraceID(nil, id)) }

// truncate keeps error messages short when a client sends a huge bad value.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// searchParams is a parsed GET /api/traces request.
type searchParams struct {
	query storage.TraceQuery
	// traceIDs, when set, replaces the search: those traces are fetched by ID.
	traceIDs []pcommon.TraceID
	raw      bool
}

// parseSearchParams reads the Jaeger search parameters (REFERENCE.md §1.2). now anchors the
// default window [now−lookback, now]. Every malformed parameter is a *paramError naming it.
func parseSearchParams(q url.Values, now time.Time, lookback time.Duration, maxLimit int) (searchParams, error) {
	var p searchParams
	p.query.ServiceName = q.Get("service")
	p.query.OperationName = q.Get("operation")

	end, endSet, err := parseMicros(q, "end")
	if err != nil {
		return p, err
	}
	if !endSet {
		end = now
	}
	start, startSet, err := parseMicros(q, "start")
	if err != nil {
		return p, err
	}
	if !startSet {
		start = end.Add(-lookback)
	}
	if start.After(end) {
		return p, badParam("parameter 'start' (%d) is after parameter 'end' (%d)", start.UnixMicro(), end.UnixMicro())
	}
	p.query.StartTimeMin, p.query.StartTimeMax = start, end

	if p.query.DurationMin, err = parseDurationParam(q, "minDuration"); err != nil {
		return p, err
	}
	if p.query.DurationMax, err = parseDurationParam(q, "maxDuration"); err != nil {
		return p, err
	}
	if p.query.DurationMin != 0 && p.query.DurationMax != 0 && p.query.DurationMax < p.query.DurationMin {
		return p, badParam("'maxDuration' should be greater than 'minDuration'")
	}

	p.query.Limit = storage.DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxLimit {
			return p, badParam("parameter 'limit' must be an integer from 0 to %d, got %q", maxLimit, truncate(s))
		}
		if n > 0 {
			p.query.Limit = n
		}
	}

	if p.raw, err = parseBoolParam(q, "raw"); err != nil {
		return p, err
	}
	if p.query.Attributes, err = parseTags(q["tag"], q["tags"]); err != nil {
		return p, err
	}
	for _, s := range q["traceID"] {
		id, err := parseTraceID(s)
		if err != nil {
			return p, badParam("parameter 'traceID': %v", err)
		}
		p.traceIDs = append(p.traceIDs, id)
	}
	// lookback is sent by Jaeger UI and Grafana but already turned into start/end by them;
	// Jaeger ignores it and so do we.
	return p, nil
}

// parseMicros reads a unix-microseconds time parameter.
func parseMicros(q url.Values, name string) (time.Time, bool, error) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, false, nil
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false, badParam("parameter '%s' must be a unix time in microseconds, got %q", name, truncate(s))
	}
	return time.UnixMicro(us), true, nil
}

func parseDurationParam(q url.Values, name string) (time.Duration, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badParam("parameter '%s' must be a non-negative duration such as 1ms or 1.2s, got %q", name, truncate(s))
	}
	return d, nil
}

func parseBoolParam(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badParam("parameter '%s' must be true or false, got %q", name, truncate(s))
	}
	return b, nil
}

// parseTags merges tag=key:value parameters and tags={JSON object} parameters; later ones
// win on a repeated key, tags over tag, as in Jaeger. Unlike Jaeger, JSON values may also be
// numbers and booleans (Grafana's logfmt conversion sends them unquoted); they match the
// attribute written as a string, so the number's literal text is kept as is.
func parseTags(simple, jsonTags []string) (map[string]string, error) {
	if len(simple) == 0 && len(jsonTags) == 0 {
		return nil, nil
	}
	tags := make(map[string]string, len(simple))
	for _, t := range simple {
		k, v, ok := strings.Cut(t, ":")
		if !ok || k == "" {
			return nil, badParam("malformed 'tag' parameter, expecting key:value, got %q", truncate(t))
		}
		tags[k] = v
	}
	for _, t := range jsonTags {
		if err := decodeTagsJSON(t, tags); err != nil {
			return nil, badParam("malformed 'tags' parameter, expecting a JSON object of strings, numbers or booleans: %v", err)
		}
	}
	if len(tags) == 0 {
		return nil, nil
	}
	return tags, nil
}

func decodeTagsJSON(s string, into map[string]string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("decode %q: %w", truncate(s), err)
	}
	if m == nil {
		return fmt.Errorf("%q is not a JSON object", truncate(s))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%q has data after the JSON object", truncate(s))
	}
	for k, raw := range m {
		if k == "" {
			return errors.New("empty attribute key")
		}
		v, err := tagValue(raw)
		if err != nil {
			return fmt.Errorf("key %q: %w", truncate(k), err)
		}
		into[k] = v
	}
	return nil
}

func tagValue(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", errors.New("empty value")
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("decode string: %w", err)
		}
		return s, nil
	case c == 't' || c == 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", fmt.Errorf("decode boolean: %w", err)
		}
		return strconv.FormatBool(b), nil
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("decode number: %w", err)
		}
		return n.String(), nil
	}
	return "", fmt.Errorf("value %s is not a string, number or boolean", truncate(string(raw)))
}

// parseSpanKind checks a spanKind parameter against the kinds storage knows.
func parseSpanKind(s string) (string, error) {
	switch s {
	case "", "server", "client", "producer", "consumer", "internal", "unspecified":
		return s, nil
	}
	return "", badParam("parameter 'spanKind' must be one of server, client, producer, consumer, internal, unspecified, got %q", truncate(s))
}

// pathParam returns a path parameter URL-unescaped. echo routes on the raw path only when
// the request's escaping differs from Go's default (RawPath set, e.g. for %2F); then the
// parameter is still escaped. Otherwise it was already unescaped by net/url, and unescaping
// again would corrupt a literal '%'.
func pathParam(rawPathSet bool, v, name string) (string, error) {
	if !rawPathSet {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", badParam("path parameter '%s' is not validly escaped: %q", name, truncate(v))
	}
	return u, nil
}
