package demo_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// rspan is one span as a receiver decoded it, with the transport it came on.
type rspan struct {
	proto    string
	service  string
	resource map[string]any
	traceID  pcommon.TraceID
	spanID   pcommon.SpanID
	parentID pcommon.SpanID
	name     string
	kind     ptrace.SpanKind
	status   ptrace.StatusCode
	attrs    map[string]any
	events   []string
	start    time.Time
	end      time.Time
}

// sink is what the three test receivers have been sent.
type sink struct {
	mu    sync.Mutex
	spans []rspan
	// zipkinStatus, when set, is what the Zipkin receiver answers instead of 202.
	zipkinStatus int
}

func (s *sink) add(proto string, td ptrace.Traces) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes().AsRaw()
		svc, _ := res["service.name"].(string)
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				r := rspan{
					proto: proto, service: svc, resource: res,
					traceID: sp.TraceID(), spanID: sp.SpanID(), parentID: sp.ParentSpanID(),
					name: sp.Name(), kind: sp.Kind(), status: sp.Status().Code(),
					attrs: sp.Attributes().AsRaw(),
					start: sp.StartTimestamp().AsTime(), end: sp.EndTimestamp().AsTime(),
				}
				for _, ev := range sp.Events().All() {
					r.events = append(r.events, ev.Name())
				}
				s.spans = append(s.spans, r)
			}
		}
	}
}

func (s *sink) all() []rspan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rspan(nil), s.spans...)
}

type grpcReceiver struct {
	ptraceotlp.UnimplementedGRPCServer
	s *sink
}

func (g *grpcReceiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	g.s.add("otlp/grpc", req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

// receivers are real OTLP gRPC, OTLP HTTP and Zipkin v2 JSON listeners on
// 127.0.0.1 with ports chosen by the kernel.
type receivers struct {
	sink                           *sink
	grpcAddr, httpAddr, zipkinAddr string
}

func startReceivers(t *testing.T) *receivers {
	t.Helper()
	s := &sink{}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(gs, &grpcReceiver{s: s})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() { gs.Stop(); <-served })

	otlpHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.add("otlp/http", req.Traces())
		out, err := ptraceotlp.NewExportResponse().MarshalProto()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(otlpHTTP.Close)

	unmarshaler := zipkinv2.NewJSONTracesUnmarshaler(false)
	zipkin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/spans" {
			http.Error(w, "want POST /api/v2/spans", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		status := s.zipkinStatus
		s.mu.Unlock()
		if status != 0 {
			http.Error(w, "refused by test", status)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		td, err := unmarshaler.UnmarshalTraces(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.add("zipkin", td)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(zipkin.Close)

	return &receivers{
		sink:       s,
		grpcAddr:   lis.Addr().String(),
		httpAddr:   otlpHTTP.Listener.Addr().String(),
		zipkinAddr: zipkin.Listener.Addr().String(),
	}
}
