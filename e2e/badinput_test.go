package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// goodTraces returns one valid span of a fresh trace.
func goodTraces(traceByte byte) (ptrace.Traces, pcommon.TraceID) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bad-input-test")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	tid := pcommon.TraceID{0x42, traceByte, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, traceByte}
	sp.SetTraceID(tid)
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, traceByte})
	sp.SetName("ok")
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	return td, tid
}

func zeroTraceIDTraces() ptrace.Traces {
	td, _ := goodTraces(0)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetTraceID(pcommon.TraceID{})
	return td
}

func protoBody(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonBody(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzipBomb is a small gzip body that inflates to n zero bytes.
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for written := 0; written < n; written += len(zeros) {
		if _, err := zw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type httpCase struct {
	name        string
	url         string
	contentType string
	encoding    string
	body        []byte
	wantStatus  int    // exact status wanted
	wantReason  string // a substring of the response body
}

// TestBadInput sends malformed, invalid, oversized and bomb bodies to every receiver:
// each gets a 4xx (or gRPC InvalidArgument / ResourceExhausted) with a reason, Spoor
// stays up, and a good request right after still succeeds.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := startSpoor(t, t.TempDir())
	otlpURL := "http://" + s.ep.OTLPHTTP + "/v1/traces"
	zipkinV2 := "http://" + s.ep.Zipkin + "/api/v2/spans"
	zipkinV1 := "http://" + s.ep.Zipkin + "/api/v1/spans"
	big := bytes.Repeat([]byte("x"), 17<<20) // over the 16 MiB limit of the default config
	bomb := gzipBomb(t, 64<<20)

	cases := []httpCase{
		{name: "otlp-http malformed protobuf", url: otlpURL, contentType: "application/x-protobuf",
			body: []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}, wantStatus: 400, wantReason: "EOF"},
		{name: "otlp-http malformed json", url: otlpURL, contentType: "application/json",
			body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":`), wantStatus: 400},
		{name: "otlp-http zero trace id (protobuf)", url: otlpURL, contentType: "application/x-protobuf",
			body: protoBody(t, zeroTraceIDTraces()), wantStatus: 400, wantReason: "trace ID"},
		{name: "otlp-http zero trace id (json)", url: otlpURL, contentType: "application/json",
			body: jsonBody(t, zeroTraceIDTraces()), wantStatus: 400, wantReason: "trace ID"},
		{name: "otlp-http body over limit", url: otlpURL, contentType: "application/x-protobuf",
			body: big, wantStatus: 413, wantReason: "limit"},
		{name: "otlp-http gzip bomb", url: otlpURL, contentType: "application/x-protobuf", encoding: "gzip",
			body: bomb, wantStatus: 413, wantReason: "limit"},
		{name: "otlp-http corrupt gzip", url: otlpURL, contentType: "application/x-protobuf", encoding: "gzip",
			body: append(gzipBytes(t, protoBody(t, zeroTraceIDTraces()))[:20], 0xde, 0xad), wantStatus: 400},
		{name: "zipkin v2 malformed json", url: zipkinV2, contentType: "application/json",
			body: []byte(`[{"traceId":"zz","id":`), wantStatus: 400},
		{name: "zipkin v2 malformed protobuf", url: zipkinV2, contentType: "application/x-protobuf",
			body: []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, wantStatus: 400},
		{name: "zipkin v1 malformed thrift", url: zipkinV1, contentType: "application/x-thrift",
			body: []byte{0x0c, 0x00, 0x00, 0x00, 0x05, 0xff}, wantStatus: 400},
		{name: "zipkin v2 zero trace id", url: zipkinV2, contentType: "application/json",
			body:       []byte(`[{"traceId":"00000000000000000000000000000000","id":"0000000000000001","name":"x","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"bad"}}]`),
			wantStatus: 400, wantReason: "trace ID"},
		{name: "zipkin body over limit", url: zipkinV2, contentType: "application/json",
			body: big, wantStatus: 413, wantReason: "limit"},
		{name: "zipkin gzip bomb", url: zipkinV2, contentType: "application/json", encoding: "gzip",
			body: bomb, wantStatus: 413, wantReason: "limit"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := post(t, c.url, c.contentType, c.encoding, c.body)
			if status != c.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", status, c.wantStatus, truncate(body, 300))
			}
			if strings.TrimSpace(body) == "" {
				t.Errorf("status %d came without a reason in the body", status)
			}
			if c.wantReason != "" && !strings.Contains(strings.ToLower(body), strings.ToLower(c.wantReason)) {
				t.Errorf("body %q does not name the reason %q", truncate(body, 300), c.wantReason)
			}
			s.alive()
			// The next good request still succeeds.
			td, tid := goodTraces(byte(i + 1))
			if status, body := post(t, otlpURL, "application/x-protobuf", "gzip", gzipBytes(t, protoBody(t, td))); status != 200 {
				t.Fatalf("good request after bad one: status %d (%s)", status, body)
			}
			if _, ok := s.trace(tid.String(), 5*time.Second); !ok {
				t.Fatalf("good trace %s sent after the bad request is not stored", tid)
			}
		})
	}

	t.Run("otlp-grpc", func(t *testing.T) {
		conn, err := grpc.NewClient(s.ep.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := ptraceotlp.NewGRPCClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		_, err = client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(zeroTraceIDTraces()))
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "trace ID") {
			t.Errorf("zero trace ID over gRPC: %v, want InvalidArgument naming the trace ID", err)
		}

		// A message over the receive limit is refused before decoding.
		huge, _ := goodTraces(0xee)
		sp := huge.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		sp.Attributes().PutStr("blob", strings.Repeat("y", 17<<20))
		_, err = client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(huge))
		if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted {
			t.Errorf("oversized gRPC message: %v, want ResourceExhausted", err)
		}

		// Malformed protobuf bytes on the wire.
		err = conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
			&rawMessage{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}, new(rawMessage), grpc.ForceCodec(rawCodec{}))
		if st, _ := status.FromError(err); st.Code() != codes.Internal && st.Code() != codes.InvalidArgument {
			t.Errorf("malformed protobuf over gRPC: %v, want an error status", err)
		} else if err == nil {
			t.Errorf("malformed protobuf over gRPC was accepted")
		}

		s.alive()
		good, tid := goodTraces(0xaa)
		if _, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(good)); err != nil {
			t.Fatalf("good gRPC export after bad ones: %v", err)
		}
		if _, ok := s.trace(tid.String(), 5*time.Second); !ok {
			t.Fatalf("good trace %s not stored", tid)
		}
	})

	m := s.metrics()
	if !strings.Contains(m, "otelcol_receiver_refused_spans") {
		t.Errorf("/metrics has no otelcol_receiver_refused_spans counter")
	}
}

func post(t *testing.T, url, contentType, encoding string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// rawMessage is a gRPC message sent as the bytes it holds, to put malformed protobuf on
// the wire.
type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*rawMessage), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*rawMessage) = append((*v.(*rawMessage))[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
