package query

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/spoortrace/spoor/storage"
)

func TestParseTraceID(t *testing.T) {
	full := pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	for _, tc := range []struct {
		in   string
		want pcommon.TraceID
	}{
		{"5b8efff798038103d269b633813fc60c", full},
		{"5B8EFFF798038103D269B633813FC60C", full},
		{"1", pcommon.TraceID{15: 1}},
		{"abc", pcommon.TraceID{14: 0x0a, 15: 0xbc}},
		// 17 digits: the first one is the high half, as Jaeger's TraceIDFromString splits.
		{"10000000000000002", pcommon.TraceID{7: 1, 15: 2}},
		{"0000000000000000d269b633813fc60c", pcommon.TraceID{8: 0xd2, 9: 0x69, 10: 0xb6, 11: 0x33, 12: 0x81, 13: 0x3f, 14: 0xc6, 15: 0x0c}},
		{"d269b633813fc60c", pcommon.TraceID{8: 0xd2, 9: 0x69, 10: 0xb6, 11: 0x33, 12: 0x81, 13: 0x3f, 14: 0xc6, 15: 0x0c}},
		// base64 of the 16 bytes, every alphabet and padding.
		{"W47/95gDgQPSabYzgT/GDA==", full},
		{"W47/95gDgQPSabYzgT/GDA", full},
		{"W47_95gDgQPSabYzgT_GDA==", full},
		{"W47_95gDgQPSabYzgT_GDA", full},
	} {
		got, err := parseTraceID(tc.in)
		if err != nil {
			t.Errorf("parseTraceID(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseTraceID(%q) = %x, want %x", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{
		"", "xyz", "0x1234", "5b8efff798038103d269b633813fc60c0", "-1", "12 34", "+1",
		"0", "00000000000000000000000000000000", "AAAAAAAAAAAAAAAAAAAAAA==", // all-zero
		"W47/95gDgQPSabYzgT/G", "W47/95gDgQPSabYzgT/GDA=", "W47/95gDgQPSabYzgT/GDAAA", // base64 of the wrong length
	} {
		if id, err := parseTraceID(bad); err == nil {
			t.Errorf("parseTraceID(%q) = %x, want an error", bad, id)
		} else if !isParamError(err) {
			t.Errorf("parseTraceID(%q) error %v is not a parameter error", bad, err)
		}
	}
}

func TestTraceIDStringMatchesJaeger(t *testing.T) {
	for _, tc := range []struct {
		id   pcommon.TraceID
		want string
	}{
		{pcommon.TraceID{15: 1}, "0000000000000001"},
		{pcommon.TraceID{7: 1, 15: 2}, "00000000000000010000000000000002"},
		{pcommon.TraceID{0xff, 15: 0xff}, "ff0000000000000000000000000000ff"},
	} {
		if got := traceIDString(tc.id); got != tc.want {
			t.Errorf("traceIDString(%x) = %q, want %q", tc.id, got, tc.want)
		}
		back, err := parseTraceID(tc.want)
		if err != nil || back != tc.id {
			t.Errorf("parseTraceID(%q) = %x, %v; want %x", tc.want, back, err, tc.id)
		}
	}
}

func isParamError(err error) bool {
	var pe *paramError
	return errors.As(err, &pe)
}

var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func parse(t *testing.T, rawQuery string) (searchParams, error) {
	t.Helper()
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatalf("bad test query %q: %v", rawQuery, err)
	}
	return parseSearchParams(q, testNow, DefaultSearchLookback, DefaultMaxSearchLimit)
}

func TestParseSearchParamsDefaults(t *testing.T) {
	p, err := parse(t, "service=frontend&lookback=1h")
	if err != nil {
		t.Fatal(err)
	}
	want := storage.TraceQuery{
		ServiceName:  "frontend",
		StartTimeMin: testNow.Add(-48 * time.Hour),
		StartTimeMax: testNow,
		Limit:        100,
	}
	if !reflect.DeepEqual(p.query, want) || p.raw || p.traceIDs != nil {
		t.Errorf("defaults = %+v raw=%v ids=%v, want %+v", p.query, p.raw, p.traceIDs, want)
	}
	// Without start, the window ends at end, not at now.
	p, err = parse(t, "end=1700000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if end := time.UnixMicro(1700000000000000); !p.query.StartTimeMax.Equal(end) || !p.query.StartTimeMin.Equal(end.Add(-48*time.Hour)) {
		t.Errorf("window = [%v, %v], want 2 days before end", p.query.StartTimeMin, p.query.StartTimeMax)
	}
}

func TestParseSearchParamsFull(t *testing.T) {
	v := url.Values{}
	v.Set("service", "payments")
	v.Set("operation", "charge card")
	v.Add("tags", `{"http.status_code":500,"retried":true,"env":"prod","ratio":1.50}`)
	v.Add("tags", `{"env":"staging"}`)
	v.Add("tag", "region:eu:west")
	v.Add("tag", "env:ignored-because-tags-wins")
	v.Set("start", "1700000000000000")
	v.Set("end", "1700000060000000")
	v.Set("minDuration", "1.5ms")
	v.Set("maxDuration", "2s")
	v.Set("limit", "20")
	v.Set("raw", "true")
	v.Set("lookback", "custom")
	p, err := parse(t, v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	want := storage.TraceQuery{
		ServiceName:   "payments",
		OperationName: "charge card",
		Attributes:    map[string]string{"http.status_code": "500", "retried": "true", "env": "staging", "ratio": "1.50", "region": "eu:west"},
		StartTimeMin:  time.UnixMicro(1700000000000000),
		StartTimeMax:  time.UnixMicro(1700000060000000),
		DurationMin:   1500 * time.Microsecond,
		DurationMax:   2 * time.Second,
		Limit:         20,
	}
	if !reflect.DeepEqual(p.query, want) {
		t.Errorf("query =\n %+v\nwant\n %+v", p.query, want)
	}
	if !p.raw {
		t.Error("raw not set")
	}
}

func TestParseSearchParamsTraceIDs(t *testing.T) {
	p, err := parse(t, "traceID=1&traceID=5b8efff798038103d269b633813fc60c")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.traceIDs) != 2 || p.traceIDs[0] != (pcommon.TraceID{15: 1}) {
		t.Errorf("traceIDs = %x", p.traceIDs)
	}
}

// Every malformed parameter is a parameter error whose message names the parameter.
func TestParseSearchParamsErrors(t *testing.T) {
	for _, tc := range []struct{ query, mention string }{
		{"start=abc", "'start'"},
		{"start=1.5", "'start'"},
		{"end=", ""}, // empty is absent: no error; checked below
		{"end=99999999999999999999", "'end'"},
		{"start=2000&end=1000", "after parameter 'end'"},
		{"minDuration=fast", "'minDuration'"},
		{"maxDuration=10", "'maxDuration'"}, // a duration needs a unit
		{"minDuration=-1s", "'minDuration'"},
		{"minDuration=2s&maxDuration=1s", "'maxDuration' should be greater than 'minDuration'"},
		{"limit=ten", "'limit'"},
		{"limit=-1", "'limit'"},
		{"limit=1501", "'limit'"},
		{"limit=99999999999999999999999", "'limit'"},
		{"raw=maybe", "'raw'"},
		{"tag=novalue", "'tag'"},
		{"tag=:value", "'tag'"},
		{"tags={", "'tags'"},
		{"tags=[]", "'tags'"},
		{"tags=null", "'tags'"},
		{`tags={"a":null}`, "'tags'"},
		{`tags={"a":{"b":"c"}}`, "'tags'"},
		{`tags={"a":["b"]}`, "'tags'"},
		{`tags={"":"b"}`, "'tags'"},
		{`tags={"a":"b"}x`, "'tags'"},
		{`tags="a"`, "'tags'"},
		{"traceID=xyz", "'traceID'"},
		{"traceID=", "'traceID'"},
		{"traceID=0", "'traceID'"},
	} {
		_, err := parse(t, tc.query)
		if tc.mention == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", tc.query, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tc.query)
			continue
		}
		if !isParamError(err) {
			t.Errorf("%s: %v is not a parameter error", tc.query, err)
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: error %q does not mention %s", tc.query, err, tc.mention)
		}
	}
}

func TestParseSearchParamsLimitEdges(t *testing.T) {
	for query, want := range map[string]int{"limit=0": 100, "limit=1": 1, "limit=1500": 1500, "": 100} {
		p, err := parse(t, query)
		if err != nil {
			t.Errorf("%s: %v", query, err)
			continue
		}
		if p.query.Limit != want {
			t.Errorf("%s: limit = %d, want %d", query, p.query.Limit, want)
		}
	}
}

func TestParseSpanKind(t *testing.T) {
	for _, k := range []string{"", "server", "client", "producer", "consumer", "internal", "unspecified"} {
		if got, err := parseSpanKind(k); err != nil || got != k {
			t.Errorf("parseSpanKind(%q) = %q, %v", k, got, err)
		}
	}
	for _, k := range []string{"SERVER", "span_kind_server", "x"} {
		if _, err := parseSpanKind(k); !isParamError(err) {
			t.Errorf("parseSpanKind(%q) error = %v, want a parameter error", k, err)
		}
	}
}

func FuzzSearchParams(f *testing.F) {
	for _, s := range []string{
		"service=a&operation=b&tags=%7B%22k%22%3A1%7D&tag=x:y&start=1&end=2&minDuration=1ms&maxDuration=2ms&limit=3&raw=true&traceID=abc",
		"tags={\"a\":[1]}", "traceID=W47_95gDgQPSabYzgT_GDA", "start=-9223372036854775808", "limit=1e3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		p, err := parseSearchParams(q, testNow, DefaultSearchLookback, DefaultMaxSearchLimit)
		if err != nil {
			if !isParamError(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		if p.query.Limit < 1 || p.query.Limit > DefaultMaxSearchLimit {
			t.Fatalf("limit %d out of range", p.query.Limit)
		}
		if p.query.StartTimeMin.After(p.query.StartTimeMax) {
			t.Fatalf("window [%v, %v] inverted", p.query.StartTimeMin, p.query.StartTimeMax)
		}
		if p.query.DurationMin != 0 && p.query.DurationMax != 0 && p.query.DurationMax < p.query.DurationMin {
			t.Fatalf("durations inverted")
		}
	})
}

func FuzzTraceID(f *testing.F) {
	for _, s := range []string{"1", "5b8efff798038103d269b633813fc60c", "W47/95gDgQPSabYzgT/GDA==", "", "zz", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseTraceID(s)
		if err != nil {
			if !isParamError(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		if id.IsEmpty() {
			t.Fatalf("accepted the all-zero trace ID from %q", s)
		}
		// Whatever was accepted prints as Jaeger prints it and reads back the same.
		back, err := parseTraceID(traceIDString(id))
		if err != nil || back != id {
			t.Fatalf("%q -> %x -> %q -> %x, %v", s, id, traceIDString(id), back, err)
		}
	})
}
