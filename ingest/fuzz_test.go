package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/spoortrace/spoor/internal/proc"
	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/badgerstore"
)

// door is Spoor's HTTP ingest path assembled in-process: the real OTLP and Zipkin
// receivers on loopback sockets, behind the door middleware, feeding the validating
// processor and a real Badger store.
type door struct {
	otlpURL, zipkinV1, zipkinV2 string
	otlpGRPC                    string
	store                       *badgerstore.Store
}

type middlewareHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h middlewareHost) GetExtensions() map[component.ID]component.Component { return h.exts }

func freePort(t testing.TB) string {
	t.Helper()
	addr, err := proc.FreeAddr() // outside the ephemeral range: see proc.FreeAddr
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func startDoor(t testing.TB) *door {
	t.Helper()
	return startDoorWith(t, nil)
}

// startDoorWith is startDoor with the processor's config adjusted by configure.
func startDoorWith(t testing.TB, configure func(*ProcessorConfig)) *door {
	t.Helper()
	ctx := context.Background()
	store, err := badgerstore.Open(t.TempDir(), badgerstore.Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })

	mwFactory := NewExtensionFactory()
	mw, err := mwFactory.Create(ctx, extensiontest.NewNopSettings(ExtensionType), mwFactory.CreateDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	host := middlewareHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{component.NewID(ExtensionType): mw}}

	write, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		err := store.WriteTraces(ctx, td)
		if storage.IsInvalidInput(err) {
			return consumererror.NewPermanent(status.Error(codes.InvalidArgument, err.Error()))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pf := ProcessorFactories()[0]
	pcfg := pf.CreateDefaultConfig().(*ProcessorConfig)
	if configure != nil {
		configure(pcfg)
	}
	proc, err := pf.CreateTraces(ctx, processortest.NewNopSettings(ProcessorType), pcfg, write)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Shutdown(context.Background()); _ = proc.Shutdown(context.Background()) })

	d := &door{store: store}
	otlpAddr, zipkinAddr, grpcAddr := freePort(t), freePort(t), freePort(t)
	d.otlpGRPC = grpcAddr
	d.otlpURL = "http://" + otlpAddr + "/v1/traces"
	d.zipkinV1 = "http://" + zipkinAddr + "/api/v1/spans"
	d.zipkinV2 = "http://" + zipkinAddr + "/api/v2/spans"
	middlewares := []any{map[string]any{"id": ExtensionType.String()}}
	for _, rc := range []struct {
		factory receiver.Factory
		conf    map[string]any
	}{
		{ReceiverFactories()[0], map[string]any{"protocols": map[string]any{
			"http": map[string]any{"endpoint": otlpAddr, "max_request_body_size": 1 << 20, "middlewares": middlewares},
			"grpc": map[string]any{"endpoint": grpcAddr, "max_recv_msg_size_mib": 1, "middlewares": middlewares},
		}}},
		{ReceiverFactories()[1], map[string]any{"endpoint": zipkinAddr, "max_request_body_size": 1 << 20, "middlewares": middlewares}},
	} {
		cfg := rc.factory.CreateDefaultConfig()
		if err := confmap.NewFromStringMap(rc.conf).Unmarshal(cfg); err != nil {
			t.Fatal(err)
		}
		r, err := rc.factory.CreateTraces(ctx, receivertest.NewNopSettings(rc.factory.Type()), cfg, proc)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx, host); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	}
	return d
}

var contentTypes = []string{"application/x-protobuf", "application/json", "application/x-thrift", "text/plain"}

func seedTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "fuzz")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("seed")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Unix(1700000000, 0)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Unix(1700000001, 0)))
	sp.Attributes().PutStr("k", "v")
	return td
}

// FuzzHTTPIngest posts arbitrary bodies, with every content type, compressed or not, to
// every HTTP ingest path. Whatever arrives, Spoor answers 2xx or 4xx — never 5xx, never a
// crash — and stays able to take the next good request.
func FuzzHTTPIngest(f *testing.F) {
	td := seedTraces()
	otlpProto, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	otlpJSON, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	f.Add(uint8(0), uint8(0), false, otlpProto)
	f.Add(uint8(0), uint8(1), false, otlpJSON)
	f.Add(uint8(0), uint8(0), true, otlpProto)
	f.Add(uint8(2), uint8(1), false, []byte(`[{"traceId":"0102030405060708090a0b0c0d0e0f10","id":"0102030405060708","name":"x","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"z"},"tags":{"a":"b"},"annotations":[{"timestamp":1700000000000001,"value":"ev"}]}]`))
	f.Add(uint8(1), uint8(1), false, []byte(`[{"traceId":"0102030405060708","id":"0102030405060708","name":"x","timestamp":1700000000000000,"duration":5,"annotations":[{"timestamp":1700000000000000,"value":"sr","endpoint":{"serviceName":"v1","ipv4":"127.0.0.1","port":80}}],"binaryAnnotations":[{"key":"k","value":"v"}]}]`))
	f.Add(uint8(1), uint8(2), false, []byte{0x0c, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x01})
	f.Add(uint8(2), uint8(0), false, []byte{0x0a, 0x02, 0x08, 0x01})

	d := startDoor(f)
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, path, ctype uint8, gz bool, body []byte) {
		url := []string{d.otlpURL, d.zipkinV1, d.zipkinV2}[int(path)%3]
		payload := body
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			payload = buf.Bytes()
		}
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentTypes[int(ctype)%len(contentTypes)])
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("POST %s (%s, gzip=%v) = %d %q: bad input must get a 4xx", url, req.Header.Get("Content-Type"), gz, resp.StatusCode, msg)
		}
		if resp.StatusCode >= 400 && len(bytes.TrimSpace(msg)) == 0 {
			t.Fatalf("POST %s = %d without a reason", url, resp.StatusCode)
		}
	})
}

// TestDoorAnswers pins the door's answers for the cases users hit most.
func TestDoorAnswers(t *testing.T) {
	d := startDoor(t)
	good, _ := ptraceotlp.NewExportRequestFromTraces(seedTraces()).MarshalProto()
	zero := seedTraces()
	zero.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetTraceID(pcommon.TraceID{})
	zeroBody, _ := ptraceotlp.NewExportRequestFromTraces(zero).MarshalProto()
	for _, c := range []struct {
		name, url, ctype string
		body             []byte
		want             int
		reason           string
	}{
		{"good otlp", d.otlpURL, "application/x-protobuf", good, 200, ""},
		{"zero trace id otlp", d.otlpURL, "application/x-protobuf", zeroBody, 400, "all-zero trace ID"},
		{"zero trace id zipkin", d.zipkinV2, "application/json",
			[]byte(`[{"traceId":"00000000000000000000000000000000","id":"0102030405060708","name":"x","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"z"}}]`),
			400, "all-zero trace ID"},
		{"too big", d.zipkinV2, "application/json", bytes.Repeat([]byte(" "), 2<<20), 413, "exceeds the limit of 1048576 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Post(c.url, c.ctype, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want || !bytes.Contains(msg, []byte(c.reason)) {
				t.Fatalf("got %d %q, want %d naming %q", resp.StatusCode, msg, c.want, c.reason)
			}
		})
	}
	if got := d.store.Stats().SpansWritten; got != 1 {
		t.Fatalf("store holds %d spans, want only the good one", got)
	}
}

// FuzzGRPCIngest puts arbitrary bytes on the wire as an OTLP gRPC Export message. A panic
// in a gRPC handler would take the whole process down, so every input must end in a
// status: OK, or a client error.
func FuzzGRPCIngest(f *testing.F) {
	good, _ := ptraceotlp.NewExportRequestFromTraces(seedTraces()).MarshalProto()
	f.Add(good)
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	d := startDoor(f)
	conn, err := grpc.NewClient(d.otlpGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = conn.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msg := rawMessage(body)
		err := conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &msg, new(rawMessage),
			grpc.ForceCodec(rawCodec{}))
		switch status.Code(err) {
		case codes.OK, codes.InvalidArgument, codes.Internal, codes.ResourceExhausted:
			// Internal is what grpc-go answers for a message it cannot unmarshal.
		default:
			t.Fatalf("Export of %d fuzzed bytes: %v", len(body), err)
		}
	})
}

type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*rawMessage), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*rawMessage) = append((*v.(*rawMessage))[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
