package query

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func (e *testEnv) post(path, contentType string, body []byte) (int, []byte) {
	e.t.Helper()
	resp, err := e.srv.Client().Post(e.srv.URL+path, contentType, bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// An uploaded OTLP file comes back as the Jaeger UI shows stored traces: the rich trace
// byte for byte as its golden file, split from the other traces of the file.
func TestTransform(t *testing.T) {
	e := newTestEnv(t, Options{})
	td := richTrace()
	zipkinFixtures(t).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	var m ptrace.JSONMarshaler
	body, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	status, resp := e.post("/api/transform", "application/json", body)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, resp)
	}
	env := decodeEnvelope(t, resp)
	var traces []json.RawMessage
	if err := json.Unmarshal(env.Data, &traces); err != nil || len(traces) != 3 {
		t.Fatalf("want 3 traces: %v %s", err, env.Data)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "jaeger_trace_rich.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := indentJSON(t, traces[0]); !bytes.Equal(got, golden) {
		t.Errorf("transformed rich trace differs from testdata/jaeger_trace_rich.json:\n%s", got)
	}
	if !bytes.Contains(traces[1], []byte(`"traceID":"a1b2c3d4e5f60718"`)) || !bytes.Contains(traces[2], []byte(`"traceID":"1111111111111111a1b2c3d4e5f60718"`)) {
		t.Errorf("other traces: %s", env.Data)
	}

	for _, bad := range []string{"", "{", `{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"0102030405060708"}]}]}]}`} {
		status, resp := e.post("/api/transform", "application/json", []byte(bad))
		expectError(t, "transform "+bad, status, resp, http.StatusBadRequest, "")
	}
	small := newTestEnv(t, Options{MaxTransformBodyBytes: 100})
	status, resp = small.post("/api/transform", "application/json", body)
	expectError(t, "big body", status, resp, http.StatusRequestEntityTooLarge, "exceeds 100 bytes")
}

func TestArchiveNotConfigured(t *testing.T) {
	e := newTestEnv(t, Options{})
	status, body := e.post("/api/archive/5b8efff798038103d269b633813fc60c", "", nil)
	expectError(t, "archive", status, body, http.StatusNotImplemented, "archive span storage was not configured")
	status, body = e.post("/api/archive/xyz", "", nil)
	expectError(t, "archive bad ID", status, body, http.StatusBadRequest, "malformed trace ID")
}

func FuzzTransformBody(f *testing.F) {
	var m ptrace.JSONMarshaler
	rich, err := m.MarshalTraces(richTrace())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rich)
	f.Add([]byte(`{"resourceSpans":[]}`))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01","spanId":"02"}]}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		traces, err := splitOTLPJSON(body)
		if err != nil {
			if !isParamError(err) {
				t.Fatalf("error %v is not a parameter error", err)
			}
			return
		}
		var cv jaegerConverter
		for _, td := range traces {
			out, _ := adjustTrace(td, DefaultMaxClockSkewAdjust)
			if !json.Valid(cv.appendTrace(nil, out, false)) {
				t.Fatalf("invalid JSON for %s", strings.TrimSpace(string(body)))
			}
		}
	})
}
