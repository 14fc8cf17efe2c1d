package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/spoortrace/spoor/internal/otlpbody"
)

// ExtensionType is the door middleware's type. HTTP receivers list it under
// `middlewares:`; it runs after the collector has decompressed the body and capped it
// at the receiver's max_request_body_size.
var ExtensionType = component.MustNewType("spoor_ingest")

// NewExtensionFactory returns the factory of the door middleware.
func NewExtensionFactory() extension.Factory {
	return extension.NewFactory(ExtensionType, func() component.Config { return &MiddlewareConfig{} },
		createMiddleware, component.StabilityLevelDevelopment)
}

// MiddlewareConfig has no settings: the body limit is the receiver's own.
type MiddlewareConfig struct{}

func createMiddleware(_ context.Context, set extension.Settings, _ component.Config) (extension.Extension, error) {
	m := set.TelemetrySettings.MeterProvider.Meter("github.com/spoortrace/spoor/ingest")
	rejected, err := m.Int64Counter("spoor_ingest_rejected_requests",
		metric.WithDescription("HTTP requests refused at the door, by reason and status."))
	if err != nil {
		return nil, fmt.Errorf("create rejected requests counter: %w", err)
	}
	refused, err := m.Int64Counter("spoor_ingest_refused_requests",
		metric.WithDescription("Requests refused at the door, before their body was read, because Spoor was overloaded, by reason and transport."))
	if err != nil {
		return nil, fmt.Errorf("create refused requests counter: %w", err)
	}
	return &middleware{rejected: rejected, refused: refused}, nil
}

type middleware struct {
	component.StartFunc
	component.ShutdownFunc
	rejected metric.Int64Counter
	refused  metric.Int64Counter
	// adm is the ingest processor's admission control, handed over when the processor
	// starts; nil until then (and in configs without the processor).
	adm atomic.Pointer[admission]
}

var (
	_ extensionmiddleware.HTTPServer = (*middleware)(nil)
	_ extensionmiddleware.GRPCServer = (*middleware)(nil)
)

// early reports whether a request must be refused before it is read.
func (m *middleware) early() (overloadReason, *admission) {
	a := m.adm.Load()
	if a == nil {
		return overloadNone, nil
	}
	return a.full(), a
}

// GetGRPCServerOptions refuses calls while Spoor is full, before their message is
// read: RESOURCE_EXHAUSTED with RetryInfo, as the processor would answer after
// decoding it; and passes an OTLP trace request's bytes on to the sampler (grpcbody.go).
func (m *middleware) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	parkingOn.Store(true)
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(requestBytesInterceptor), grpc.InTapHandle(func(ctx context.Context, _ *tap.Info) (context.Context, error) {
		reason, a := m.early()
		if reason == overloadNone {
			return ctx, nil
		}
		m.refused.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", string(reason)), attribute.String("transport", "grpc")))
		return ctx, a.refusal(reason, 0)
	})}, nil
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// GetHTTPHandler reads the whole body first, so that a body over the limit or a broken
// compressed stream gets its own clear answer (413, 400) instead of a parse error on a
// truncated body, and it passes the pipeline's reason for a refusal to senders whose
// receiver answers with a bare status text.
func (m *middleware) GetHTTPHandler(context.Context) (extensionmiddleware.WrapHTTPHandlerFunc, error) {
	return func(_ context.Context, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			if reason, a := m.early(); reason != overloadNone {
				m.refused.Add(r.Context(), 1, metric.WithAttributes(attribute.String("reason", string(reason)), attribute.String("transport", "http")))
				w.Header().Set("Retry-After", strconv.Itoa(int((a.retryAfter+time.Second-1)/time.Second)))
				msg := status.Convert(a.refusal(reason, 0)).Message()
				m.refuse(r.Context(), w, http.StatusTooManyRequests, "overloaded_"+string(reason), msg)
				return
			}
			buf := bodyPool.Get().(*bytes.Buffer)
			buf.Reset()
			kept := false // the sampler keeps the body (otlpbody.Retain), and gives it back
			putBack := func() {
				if buf.Cap() <= 4<<20 {
					bodyPool.Put(buf)
				}
			}
			defer func() {
				if !kept {
					putBack()
				}
			}()
			if cl := r.ContentLength; cl > 0 && cl <= 4<<20 {
				// Room for the body and the read that finds its end: a buffer no
				// larger than the body, which the sampler may keep whole.
				buf.Grow(int(cl) + bytes.MinRead)
			}
			_, err := buf.ReadFrom(r.Body)
			_ = r.Body.Close()
			if err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					m.refuse(r.Context(), w, http.StatusRequestEntityTooLarge, "body_too_large",
						fmt.Sprintf("request body exceeds the limit of %d bytes (after decompression)", tooBig.Limit))
					return
				}
				m.refuse(r.Context(), w, http.StatusBadRequest, "unreadable_body",
					"cannot read request body: "+err.Error())
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
			r.ContentLength = int64(buf.Len())
			ctx, rej := withRejection(r.Context())
			if isProtobuf(r.Header.Get("Content-Type")) {
				// For the sampler, which copies the spans it holds out of these bytes
				// (internal/otlpbody); a Zipkin protobuf body never matches its spans.
				ctx = otlpbody.NewContext(ctx, buf.Bytes(), func() func() {
					kept = true
					return putBack
				})
			}
			ew := &explainingWriter{ResponseWriter: w, rej: rej, ctype: r.Header.Get("Content-Type")}
			next.ServeHTTP(ew, r.WithContext(ctx))
			if ew.status >= 400 {
				m.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", "refused_by_receiver"),
					attribute.Int("status", ew.status)))
			}
		}), nil
	}, nil
}

// isProtobuf reports whether a Content-Type is OTLP's (and Zipkin's) protobuf one.
func isProtobuf(ctype string) bool {
	mt, _, _ := strings.Cut(ctype, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/x-protobuf")
}

func (m *middleware) refuse(ctx context.Context, w http.ResponseWriter, status int, reason, msg string) {
	m.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason), attribute.Int("status", status)))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// explainingWriter replaces a plain-text error body that carries no reason with the
// reason the pipeline recorded. Bodies in the protocol's own format (OTLP's protobuf
// or JSON Status) already carry the message and pass unchanged.
type explainingWriter struct {
	http.ResponseWriter
	ctype    string // the request's Content-Type, for messages
	rej      *rejection
	status   int
	replaced bool
}

func (w *explainingWriter) WriteHeader(status int) {
	if d := w.rej.overload(); d > 0 && status >= 500 {
		// The Zipkin receiver answers every retryable error with 500; an overloaded
		// Spoor says 429 and when to come back, as the OTLP receiver does.
		status = http.StatusTooManyRequests
	}
	if d := w.rej.overload(); d > 0 && status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
	if status >= 500 && !w.rej.decoded() {
		// The request failed before its spans reached the pipeline: in decoding, which
		// is the body's fault. (The OTLP receiver answers 500 when the decoder's error
		// message is itself not valid UTF-8 and cannot be put into a JSON Status.)
		w.replaced = true
		msg := "cannot decode the request body as " + truncateName(w.ctype) + " (malformed, or not valid UTF-8 where text is required)"
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(msg)+1))
		w.status = http.StatusBadRequest
		w.ResponseWriter.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w.ResponseWriter, msg+"\n")
		return
	}
	w.status = status
	if status >= 400 {
		ct := w.Header().Get("Content-Type")
		if reason := w.rej.get(); reason != "" && (ct == "" || strings.HasPrefix(ct, "text/plain")) {
			w.replaced = true
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(reason)+1))
			w.ResponseWriter.WriteHeader(status)
			_, _ = io.WriteString(w.ResponseWriter, reason+"\n")
			return
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *explainingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.replaced {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}
