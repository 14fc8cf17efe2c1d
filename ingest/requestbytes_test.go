package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the gzip compressor, for the client

	"github.com/spoortrace/spoor/internal/otlpbody"
)

// The door passes the protobuf bytes of each OTLP request on to the pipeline
// (internal/otlpbody), over HTTP (decompressed) and gRPC (gzip or not), and nothing
// for JSON bodies; the bytes are exactly the request's, and a consumer may keep them
// past the call (otlpbody.Retain) without the door reusing them.
func TestDoorPassesRequestBytes(t *testing.T) {
	ctx := context.Background()
	mwFactory := NewExtensionFactory()
	mw, err := mwFactory.Create(ctx, extensiontest.NewNopSettings(ExtensionType), mwFactory.CreateDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	host := middlewareHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{component.NewID(ExtensionType): mw}}
	var mu sync.Mutex
	var got [][]byte // what the pipeline saw, one per request (nil: no bytes)
	var kept [][]byte
	var releases []func()
	next, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		b := otlpbody.FromContext(ctx)
		if n := len(got); b != nil && (n == 0 || n == 3) {
			// The first HTTP and gRPC requests' bytes are kept past the call.
			release, ok := otlpbody.Retain(ctx)
			if !ok {
				t.Error("the door does not let the bytes be kept")
			} else if _, again := otlpbody.Retain(ctx); again {
				t.Error("the bytes were handed over twice")
			}
			kept, releases = append(kept, b), append(releases, release)
		}
		if b != nil {
			// The bytes are valid during the call only: a copy, and a check that
			// they are this call's.
			if n := td.SpanCount(); n == 0 {
				t.Error("empty batch")
			}
			b = bytes.Clone(b)
		}
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, grpcAddr := freePort(t), freePort(t)
	middlewares := []any{map[string]any{"id": ExtensionType.String()}}
	f := ReceiverFactories()[0]
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{"protocols": map[string]any{
		"http": map[string]any{"endpoint": httpAddr, "middlewares": middlewares},
		"grpc": map[string]any{"endpoint": grpcAddr, "middlewares": middlewares},
	}}).Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	r, err := f.CreateTraces(ctx, receivertest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Shutdown(context.Background()) }()

	// Each request differs from the others (its span's name), so that a kept request's
	// buffer reused for a later one would show.
	reqs := make([]ptraceotlp.ExportRequest, 5)
	wants := make([][]byte, 5)
	for i := range reqs {
		td := seedTraces()
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName(fmt.Sprintf("request %d", i))
		reqs[i] = ptraceotlp.NewExportRequestFromTraces(td)
		if wants[i], err = reqs[i].MarshalProto(); err != nil {
			t.Fatal(err)
		}
	}
	jsonBody, err := reqs[2].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	post := func(ctype string, body []byte, gz bool) {
		t.Helper()
		if gz {
			body = gzipped(t, body)
		}
		hr, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		hr.Header.Set("Content-Type", ctype)
		if gz {
			hr.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d", ctype, resp.StatusCode)
		}
	}
	post("application/x-protobuf", wants[0], false)
	post("application/x-protobuf", wants[1], true)
	post("application/json", jsonBody, false)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	if _, err := client.Export(ctx, reqs[3]); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Export(ctx, reqs[4], grpc.UseCompressor("gzip")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 5 {
		t.Fatalf("%d requests reached the pipeline, want 5", len(got))
	}
	for i, name := range []string{"HTTP protobuf", "HTTP protobuf gzip", "HTTP JSON", "gRPC", "gRPC gzip"} {
		wantBytes := wants[i]
		if name == "HTTP JSON" {
			wantBytes = nil
		}
		if !bytes.Equal(got[i], wantBytes) {
			t.Errorf("%s: request bytes %x, want %x", name, got[i], wantBytes)
		}
	}
	// The kept bytes were not reused by the requests after them.
	for i, b := range kept {
		if want := wants[3*i]; !bytes.Equal(b, want) {
			t.Errorf("kept request %d changed after its call: %x", i, b)
		}
	}
	for _, release := range releases {
		release()
	}
	if n := parkedCount(); n != 0 {
		t.Errorf("%d gRPC request buffers still parked", n)
	}
}

func parkedCount() int {
	parked.mu.Lock()
	defer parked.mu.Unlock()
	n := 0
	for _, s := range parked.slots {
		if s.buf != nil {
			n++
		}
	}
	return n
}

func gzipped(t *testing.T, b []byte) []byte {
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
