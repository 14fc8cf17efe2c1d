package query

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The decoded shape of Jaeger's uimodel, for field-by-field checks.
type uiTrace struct {
	TraceID   string               `json:"traceID"`
	Spans     []uiSpan             `json:"spans"`
	Processes map[string]uiProcess `json:"processes"`
	Warnings  []string             `json:"warnings"`
}

type uiSpan struct {
	TraceID       string        `json:"traceID"`
	SpanID        string        `json:"spanID"`
	Flags         *uint32       `json:"flags"`
	OperationName string        `json:"operationName"`
	References    []uiReference `json:"references"`
	StartTime     uint64        `json:"startTime"`
	Duration      uint64        `json:"duration"`
	Tags          []uiKeyValue  `json:"tags"`
	Logs          []uiLog       `json:"logs"`
	ProcessID     string        `json:"processID"`
	Warnings      []string      `json:"warnings"`
}

type uiReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type uiKeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type uiLog struct {
	Timestamp uint64       `json:"timestamp"`
	Fields    []uiKeyValue `json:"fields"`
}

type uiProcess struct {
	ServiceName string       `json:"serviceName"`
	Tags        []uiKeyValue `json:"tags"`
}

func convert(t *testing.T, td ptrace.Traces, raw bool) []byte {
	t.Helper()
	var cv jaegerConverter
	out := cv.appendTrace(nil, td, raw)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON:\n%s", out)
	}
	return out
}

func decodeTrace(t *testing.T, b []byte) uiTrace {
	t.Helper()
	var tr uiTrace
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tr); err != nil {
		t.Fatalf("decode trace JSON: %v\n%s", err, b)
	}
	return tr
}

func spanByID(t *testing.T, tr uiTrace, id string) uiSpan {
	t.Helper()
	for _, s := range tr.Spans {
		if s.SpanID == id {
			return s
		}
	}
	t.Fatalf("span %s not in trace", id)
	return uiSpan{}
}

func kv(key, typ string, value any) uiKeyValue { return uiKeyValue{Key: key, Type: typ, Value: value} }

func checkTags(t *testing.T, what string, got, want []uiKeyValue) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: tags are null, want an array", what)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("%s tags:\n got %s\nwant %s", what, g, w)
	}
}

func TestJaegerTraceConversion(t *testing.T) {
	tr := decodeTrace(t, convert(t, richTrace(), false))

	const traceHex = "5b8efff798038103d269b633813fc60c"
	if tr.TraceID != traceHex {
		t.Errorf("traceID = %q, want %q", tr.TraceID, traceHex)
	}
	if tr.Warnings != nil {
		t.Errorf("trace warnings = %v, want null", tr.Warnings)
	}

	// Sorted by start time: root 0ms, fraud 5ms, pay 10ms, retry 40ms, orphan 200ms.
	var order []string
	for _, s := range tr.Spans {
		order = append(order, s.OperationName)
		if s.TraceID != traceHex {
			t.Errorf("span %s traceID = %q", s.SpanID, s.TraceID)
		}
		if s.Warnings != nil {
			t.Errorf("span %s warnings = %v, want null", s.SpanID, s.Warnings)
		}
	}
	wantOrder := []string{"POST /checkout", "fraud check", "charge card", "retry payment", "consume ledger entry"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("span order = %q, want %q", order, wantOrder)
	}

	// Processes: resources 0 and 2 are identical and share p1, numbered by first
	// appearance in span order.
	wantProcs := map[string]uiProcess{
		"p1": {ServiceName: "api-gateway", Tags: []uiKeyValue{kv("host.name", "string", "gw-1"), kv("process.pid", "int64", 4242.0)}},
		"p2": {ServiceName: "payments", Tags: []uiKeyValue{kv("deployment.environment", "string", "prod")}},
		"p3": {ServiceName: "OTLPResourceNoServiceName", Tags: []uiKeyValue{}},
	}
	if !reflect.DeepEqual(tr.Processes, wantProcs) {
		t.Errorf("processes = %+v, want %+v", tr.Processes, wantProcs)
	}

	root := spanByID(t, tr, "eee19b7ec3c1b174")
	if root.Flags == nil || *root.Flags != 1 {
		t.Errorf("root flags = %v, want 1 (sampled bit only)", root.Flags)
	}
	if root.StartTime != richTraceStartUs || root.Duration != 150_000 {
		t.Errorf("root start/duration = %d/%d, want %d/150000", root.StartTime, root.Duration, richTraceStartUs)
	}
	if len(root.References) != 0 || root.References == nil {
		t.Errorf("root references = %#v, want []", root.References)
	}
	if root.ProcessID != "p1" {
		t.Errorf("root processID = %q", root.ProcessID)
	}
	checkTags(t, "root", root.Tags, []uiKeyValue{
		kv("otel.scope.name", "string", "io.spoor.http"),
		kv("otel.scope.version", "string", "1.2.3"),
		kv("library.language", "string", "go"),
		kv("http.method", "string", "POST"),
		kv("http.retried", "bool", true),
		kv("http.status_code", "int64", 200.0),
		kv("big.int", "int64", 9.223372036854776e18),
		kv("cart.total", "float64", 123.45),
		kv("ratio.tiny", "float64", 1e-7),
		kv("ratio.nan", "float64", "NaN"),
		kv("payload", "binary", "AP8QaGk="),
		kv("customer", "string", `{"id":7,"tier":"gold"}`),
		kv("items", "string", `["sku-1",2]`),
		kv("nothing", "string", ""),
		kv("html", "string", "<b>&amp;</b> \"quoted\" \\ \u2028 \t\x01"),
		kv("bad.utf8", "string", "a\ufffdb"),
		kv("span.kind", "string", "server"),
		kv("otel.status_code", "string", "OK"),
		kv("w3c.tracestate", "string", "ot=th:8;rv:c3a1b2,spoor=x"),
	})
	if len(root.Logs) != 1 || root.Logs[0].Timestamp != richTraceStartUs+1000 {
		t.Fatalf("root logs = %+v", root.Logs)
	}
	checkTags(t, "root log", root.Logs[0].Fields, []uiKeyValue{
		kv("event", "string", "request.received"), kv("bytes", "int64", 512.0),
	})

	pay := spanByID(t, tr, "eee19b7ec3c1b175")
	if pay.ProcessID != "p2" || pay.Duration != 25_000 || pay.StartTime != richTraceStartUs+10_000 {
		t.Errorf("pay process/duration/start = %s/%d/%d", pay.ProcessID, pay.Duration, pay.StartTime)
	}
	wantRefs := []uiReference{
		{RefType: "CHILD_OF", TraceID: traceHex, SpanID: "eee19b7ec3c1b174"},
		{RefType: "FOLLOWS_FROM", TraceID: "abcd01234567", SpanID: "0102030405060708"},
	}
	wantRefs[1].TraceID = "0000abcd01234567" // a 64-bit ID prints as 16 hex digits
	if !reflect.DeepEqual(pay.References, wantRefs) {
		t.Errorf("pay references = %+v, want %+v (the link with empty IDs dropped)", pay.References, wantRefs)
	}
	checkTags(t, "pay", pay.Tags, []uiKeyValue{
		kv("payment.provider", "string", "acme"),
		kv("span.kind", "string", "client"),
		kv("otel.status_code", "string", "ERROR"),
		kv("error", "bool", true),
		kv("otel.status_description", "string", "card declined"),
	})
	if len(pay.Logs) != 3 {
		t.Fatalf("pay logs = %+v", pay.Logs)
	}
	checkTags(t, "pay log 0", pay.Logs[0].Fields, []uiKeyValue{
		kv("event", "string", "exception"),
		kv("exception.type", "string", "CardDeclined"),
		kv("exception.message", "string", "insufficient funds"),
	})
	checkTags(t, "pay log 1 (event attribute wins over the name)", pay.Logs[1].Fields, []uiKeyValue{
		kv("event", "string", "retry scheduled"),
	})
	checkTags(t, "pay log 2 (nameless)", pay.Logs[2].Fields, nil)
	if pay.Logs[1].Timestamp != richTraceStartUs+34_500 {
		t.Errorf("pay log 1 timestamp = %d", pay.Logs[1].Timestamp)
	}

	retry := spanByID(t, tr, "eee19b7ec3c1b177")
	if want := []uiReference{{RefType: "CHILD_OF", TraceID: traceHex, SpanID: "eee19b7ec3c1b174"}}; !reflect.DeepEqual(retry.References, want) {
		t.Errorf("retry references = %+v, want %+v", retry.References, want)
	}
	checkTags(t, "retry", retry.Tags, []uiKeyValue{
		kv("otel.scope.name", "string", "io.spoor.http"),
		kv("otel.scope.version", "string", "1.2.3"),
		kv("library.language", "string", "go"),
		kv("span.kind", "string", "internal"),
	})

	fraud := spanByID(t, tr, "eee19b7ec3c1b176")
	if fraud.Duration != 0 || fraud.ProcessID != "p1" || fraud.Flags != nil {
		t.Errorf("fraud duration/process/flags = %d/%s/%v, want 0/p1/absent", fraud.Duration, fraud.ProcessID, fraud.Flags)
	}
	checkTags(t, "fraud", fraud.Tags, []uiKeyValue{kv("span.kind", "string", "producer")})
	if fraud.Logs == nil || len(fraud.Logs) != 0 {
		t.Errorf("fraud logs = %#v, want []", fraud.Logs)
	}

	orphan := spanByID(t, tr, "eee19b7ec3c1b178")
	if orphan.ProcessID != "p3" {
		t.Errorf("orphan processID = %q", orphan.ProcessID)
	}
	checkTags(t, "orphan", orphan.Tags, []uiKeyValue{kv("span.kind", "string", "consumer")})
}

func TestJaegerTraceConversionRaw(t *testing.T) {
	tr := decodeTrace(t, convert(t, richTrace(), true))
	var order []string
	for _, s := range tr.Spans {
		order = append(order, s.OperationName)
	}
	// Storage order, untouched.
	want := []string{"retry payment", "POST /checkout", "charge card", "fraud check", "consume ledger entry"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("raw span order = %q, want %q", order, want)
	}
	pay := spanByID(t, tr, "eee19b7ec3c1b175")
	if len(pay.References) != 3 || pay.References[2].TraceID != "0000000000000000" || pay.References[2].SpanID != "0000000000000000" {
		t.Errorf("raw keeps the link with empty IDs; references = %+v", pay.References)
	}
	// The trace's traceID comes from its first span, whatever the order.
	if tr.TraceID != "5b8efff798038103d269b633813fc60c" || tr.Spans[0].ProcessID != "p1" {
		t.Errorf("raw traceID/first process = %q/%q", tr.TraceID, tr.Spans[0].ProcessID)
	}
}

func TestJaegerTraceConversionDoesNotMutate(t *testing.T) {
	td := richTrace()
	before, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	convert(t, td, false)
	after, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if !bytes.Equal(before, after) {
		t.Error("conversion changed the traces it was given")
	}
}

func TestJaegerTraceConversionReusesConverter(t *testing.T) {
	var cv jaegerConverter
	first := cv.appendTrace(nil, richTrace(), false)
	small := simpleTrace(richTraceID, "solo", "GET /", richTraceStart, 1e6, "dev")
	cv.appendTrace(nil, small, false)
	again := cv.appendTrace(nil, richTrace(), false)
	if !bytes.Equal(first, again) {
		t.Errorf("a reused converter gave different output:\n%s\n%s", first, again)
	}
}

func TestJaegerTraceGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		raw  bool
	}{
		{"jaeger_trace_rich.json", false},
		{"jaeger_trace_rich_raw.json", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var out bytes.Buffer
			if err := json.Indent(&out, convert(t, richTrace(), tc.raw), "", "  "); err != nil {
				t.Fatalf("indent: %v", err)
			}
			out.WriteByte('\n')
			checkGolden(t, tc.file, out.Bytes())
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (review, then go test -update):\n%s", path, got)
	}
}

// The hand-written encoder must agree with encoding/json byte for byte, or goldens and
// clients could tell the difference.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "<>&", "\u2028\u2029", "\x00\x1f\x7f", "a\xffb", "\xed\xa0\x80", "日本語", `"\`, "\r\n\t\b\f"} {
		checkJSONString(t, s)
	}
}

func checkJSONString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal %q: %v", s, err)
	}
	if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
		t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
	}
}

func TestAppendJSONFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 123.45, 1e-7, 1e-6, 1e20, 1e21, 1.5e300, -2.5e-10, 5e-324} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatalf("marshal %v: %v", f, err)
		}
		if got := appendJSONFloat(nil, f); !bytes.Equal(got, want) {
			t.Errorf("appendJSONFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "<a>", "\u2028", "a\xffb", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

// Past procScanLimit distinct processes the converter switches to a map; numbering and
// sharing must not change at the switch, also when the converter is reused.
func TestJaegerProcessesManyResources(t *testing.T) {
	td := ptrace.NewTraces()
	const distinct = 3*procScanLimit + 1
	for i := 0; i < 2*distinct; i++ {
		rs := td.ResourceSpans().AppendEmpty()
		// Resources i and i+distinct are identical.
		rs.Resource().Attributes().PutStr("service.name", "svc")
		rs.Resource().Attributes().PutInt("pod", int64(i%distinct))
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(richTraceID)
		sp.SetSpanID(pcommon.SpanID{byte(i), 1})
		sp.SetStartTimestamp(ts(time.Duration(i) * time.Millisecond))
		sp.SetEndTimestamp(ts(time.Duration(i+1) * time.Millisecond))
	}
	var cv jaegerConverter
	for round := 0; round < 2; round++ {
		tr := decodeTrace(t, cv.appendTrace(nil, td, false))
		if len(tr.Processes) != distinct {
			t.Fatalf("round %d: %d processes, want %d", round, len(tr.Processes), distinct)
		}
		for i, s := range tr.Spans {
			want := "p" + itoa(i%distinct+1)
			if s.ProcessID != want {
				t.Fatalf("round %d: span %d has process %s, want %s", round, i, s.ProcessID, want)
			}
			pod := tr.Processes[want].Tags[0].Value.(float64)
			if int(pod) != i%distinct {
				t.Fatalf("round %d: process %s has pod %v, want %d", round, want, pod, i%distinct)
			}
		}
	}
}
