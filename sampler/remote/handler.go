package remote

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const (
	// maxQueryBytes bounds the query string: a service name and little else.
	maxQueryBytes = 1024
	// maxServiceLabels bounds the service label of the requests metric; services past
	// it are counted under otherServiceLabel.
	maxServiceLabels  = 256
	otherServiceLabel = "_other"
)

// Results of a request, the result label of the requests metric.
const (
	resultOK               = "ok"
	resultBadRequest       = "bad_request"
	resultMethodNotAllowed = "method_not_allowed"
	resultNotFound         = "not_found"
	resultQueryTooLong     = "query_too_long"
)

// served is one version of the strategies, encoded for HTTP and built for gRPC.
type served struct {
	byService      map[string][]byte
	fallback       []byte
	protoByService map[string]*api_v2.SamplingStrategyResponse
	protoFallback  *api_v2.SamplingStrategyResponse
}

func newServed(s *strategies, numeric bool) *served {
	out := &served{
		byService:      make(map[string][]byte, len(s.byService)),
		fallback:       s.fallback.encode(numeric),
		protoByService: make(map[string]*api_v2.SamplingStrategyResponse, len(s.byService)),
		protoFallback:  s.fallback.toProto(),
	}
	for name, st := range s.byService {
		out.byService[name] = st.encode(numeric)
		out.protoByService[name] = st.toProto()
	}
	return out
}

// handler answers Jaeger remote sampling requests from the current strategies.
type handler struct {
	current  atomic.Pointer[served]
	requests metric.Int64Counter

	mu       sync.Mutex
	services map[string]struct{} // service labels seen, at most maxServiceLabels
}

func newHandler(requests metric.Int64Counter, s *served) *handler {
	h := &handler{requests: requests, services: make(map[string]struct{})}
	h.current.Store(s)
	return h
}

// ServeHTTP serves GET /?service=NAME and GET /sampling?service=NAME: "/" is where
// Jaeger mounts the handler, "/sampling" what Jaeger clients and the OTel contrib
// sampler's documentation call.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" && r.URL.Path != "/sampling" {
		h.fail(r.Context(), w, http.StatusNotFound, resultNotFound, "not found: sampling strategies are served at /?service=NAME and /sampling?service=NAME")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		h.fail(r.Context(), w, http.StatusMethodNotAllowed, resultMethodNotAllowed, "method "+r.Method+" not allowed: use GET")
		return
	}
	if len(r.URL.RawQuery) > maxQueryBytes {
		h.fail(r.Context(), w, http.StatusRequestURITooLong, resultQueryTooLong, "query string longer than 1024 bytes")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.fail(r.Context(), w, http.StatusBadRequest, resultBadRequest, "malformed query string: "+err.Error())
		return
	}
	services := q["service"]
	if len(services) != 1 {
		h.fail(r.Context(), w, http.StatusBadRequest, resultBadRequest, "'service' parameter must appear exactly once")
		return
	}
	service := services[0]
	if service == "" {
		h.fail(r.Context(), w, http.StatusBadRequest, resultBadRequest, "'service' parameter must not be empty")
		return
	}
	cur := h.current.Load()
	body, ok := cur.byService[service]
	if !ok {
		body = cur.fallback
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	h.requests.Add(r.Context(), 1, metric.WithAttributes(
		attribute.String("service", h.serviceLabel(service)), attribute.String("result", resultOK)))
}

func (h *handler) fail(ctx context.Context, w http.ResponseWriter, status int, result, reason string) {
	http.Error(w, reason, status)
	h.requests.Add(ctx, 1, metric.WithAttributes(attribute.String("service", ""), attribute.String("result", result)))
}

// serviceLabel keeps the metric's cardinality bounded whatever names clients send.
func (h *handler) serviceLabel(service string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.services[service]; ok {
		return service
	}
	if len(h.services) >= maxServiceLabels {
		return otherServiceLabel
	}
	h.services[service] = struct{}{}
	return service
}
