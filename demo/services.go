package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/openzipkin/zipkin-go"
	"github.com/openzipkin/zipkin-go/model"
	zb3 "github.com/openzipkin/zipkin-go/propagation/b3"
	"github.com/openzipkin/zipkin-go/reporter"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	ob3 "go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

const instrumentationName = "github.com/spoortrace/spoor/demo"

// serviceDef is one fake service of the shop and the transport it reports on.
type serviceDef struct {
	name, version, host, ip string
	proto                   protocol
}

var fleet = []serviceDef{
	{"api-gateway", "2.14.1", "gateway-6d8f9c7b54-kx2lp", "10.42.0.11", protoOTLPGRPC},
	{"order-service", "1.31.0", "orders-5b7c9d8f6-q8wzt", "10.42.1.23", protoOTLPHTTP},
	{"inventory-service", "0.19.4", "inventory-7c5d4b9f8-m2rjn", "10.42.1.37", protoOTLPGRPC},
	{"payment-service", "3.2.7", "payments-84f6b7d9c-vt5xh", "10.42.2.14", protoOTLPGRPC},
	{"fraud-service", "0.9.12", "fraud-59c8d7f4b-hh7ds", "10.42.2.45", protoZipkin},
	{"ledger-service", "1.4.0", "ledger-0", "10.42.3.8", protoZipkin},
	{"notification-service", "2.0.3", "notify-6f9b8c5d7-lw9pz", "10.42.3.52", protoOTLPHTTP},
}

// otelPropagator is what every OTel service injects and extracts: W3C trace
// context for its OTel peers, B3 (multi-header) for its zipkin-go peers.
var otelPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{},
	propagation.Baggage{},
	ob3.New(ob3.WithInjectEncoding(ob3.B3MultipleHeader)),
)

// service is one running fake service: an OTel TracerProvider or a zipkin-go
// Tracer, never both.
type service struct {
	serviceDef
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	zt     *zipkin.Tracer
	zrep   reporter.Reporter
	// ztransport is the reporter's own, so that its idle connections can be
	// closed when the run ends.
	ztransport *http.Transport
	gen        *generator // where propagation bugs are reported
}

// startServices builds every service with its own exporter. The exporters
// connect lazily, so this does no I/O.
func startServices(ctx context.Context, cfg Config, c *counters, logger *zap.Logger) (map[string]*service, error) {
	out := make(map[string]*service, len(fleet))
	for _, def := range fleet {
		s := &service{serviceDef: def}
		var err error
		if def.proto == protoZipkin {
			err = s.startZipkin(cfg, c, logger)
		} else {
			err = s.startOTel(ctx, cfg, c)
		}
		if err != nil {
			_ = shutdownServices(context.Background(), out)
			return nil, fmt.Errorf("start %s: %w", def.name, err)
		}
		out[def.name] = s
	}
	return out, nil
}

func (s *service) startOTel(ctx context.Context, cfg Config, c *counters) error {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	// A demo against a Spoor that is not there should say so in seconds,
	// not retry for the SDK's default minute.
	switch s.proto {
	case protoOTLPGRPC:
		exp, err = otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpoint(cfg.OTLPGRPCEndpoint),
			otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithTimeout(cfg.ExportTimeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{
				Enabled: true, InitialInterval: 100 * time.Millisecond,
				MaxInterval: time.Second, MaxElapsedTime: cfg.ExportTimeout,
			}))
	case protoOTLPHTTP:
		exp, err = otlptracehttp.New(ctx,
			otlptracehttp.WithEndpoint(cfg.OTLPHTTPEndpoint),
			otlptracehttp.WithInsecure(),
			otlptracehttp.WithTimeout(cfg.ExportTimeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
				Enabled: true, InitialInterval: 100 * time.Millisecond,
				MaxInterval: time.Second, MaxElapsedTime: cfg.ExportTimeout,
			}))
	default:
		panic("BUG: startOTel on a zipkin service")
	}
	if err != nil {
		return fmt.Errorf("create %s exporter: %w", s.proto, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", s.name),
		attribute.String("service.namespace", "shop"),
		attribute.String("service.version", s.version),
		attribute.String("deployment.environment", cfg.Environment),
		attribute.String("host.name", s.host),
	))
	if err != nil {
		return fmt.Errorf("build resource: %w", err)
	}
	s.tp = sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		// Blocking: a demo should slow down rather than drop spans.
		sdktrace.WithBatcher(&countingExporter{SpanExporter: exp, proto: s.proto, c: c},
			sdktrace.WithBlocking(),
			sdktrace.WithMaxQueueSize(8192),
			sdktrace.WithBatchTimeout(time.Second),
			sdktrace.WithExportTimeout(cfg.ExportTimeout)),
	)
	s.tracer = s.tp.Tracer(instrumentationName)
	return nil
}

func (s *service) startZipkin(cfg Config, c *counters, logger *zap.Logger) error {
	s.ztransport = http.DefaultTransport.(*http.Transport).Clone()
	s.zrep = zipkinhttp.NewReporter(cfg.ZipkinURL(),
		zipkinhttp.Client(&countingDoer{client: &http.Client{Transport: s.ztransport}, c: c}),
		zipkinhttp.Timeout(cfg.ExportTimeout),
		zipkinhttp.BatchInterval(time.Second),
		zipkinhttp.BatchSize(500),
		zipkinhttp.MaxBacklog(100000),
		zipkinhttp.Logger(zap.NewStdLog(logger.With(zap.String("service", s.name)))),
	)
	zt, err := zipkin.NewTracer(s.zrep,
		zipkin.WithLocalEndpoint(&model.Endpoint{ServiceName: s.name, IPv4: parseIP(s.ip), Port: 8080}),
		zipkin.WithTraceID128Bit(true),
		// Server spans get their own ID, child of the caller's client span,
		// as OTel does; shared spans would hide the OTel client span.
		zipkin.WithSharedSpans(false),
		zipkin.WithSampler(zipkin.AlwaysSample),
		zipkin.WithTags(map[string]string{
			"service.namespace":      "shop",
			"service.version":        s.version,
			"deployment.environment": cfg.Environment,
			"host.name":              s.host,
		}),
	)
	if err != nil {
		_ = s.zrep.Close()
		return fmt.Errorf("create zipkin tracer: %w", err)
	}
	s.zt = zt
	return nil
}

// shutdownServices flushes and stops every exporter.
func shutdownServices(ctx context.Context, services map[string]*service) error {
	var errs []error
	for _, def := range fleet {
		s := services[def.name]
		if s == nil {
			continue
		}
		if s.tp != nil {
			if err := s.tp.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("flush %s: %w", s.name, err))
			}
		}
		if s.zrep != nil {
			if err := s.zrep.Close(); err != nil {
				errs = append(errs, fmt.Errorf("flush %s: %w", s.name, err))
			}
			s.ztransport.CloseIdleConnections()
		}
	}
	return errors.Join(errs...)
}

// countingExporter counts what the OTLP receiver acknowledged.
type countingExporter struct {
	sdktrace.SpanExporter
	proto protocol
	c     *counters
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		err = fmt.Errorf("%s export of %d spans: %w", e.proto, len(spans), err)
	}
	e.c.exported(e.proto, len(spans), err)
	return err
}

// countingDoer sits under zipkin-go's HTTP reporter, which logs failures but
// reports nothing back, and counts the spans of each batch by their outcome.
type countingDoer struct {
	client *http.Client
	c      *counters
}

func (d *countingDoer) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read zipkin batch: %w", err)
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(body, &batch); err != nil {
		return nil, fmt.Errorf("BUG: zipkin-go sent a batch that is not a JSON array: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := d.client.Do(req)
	switch {
	case err != nil:
		d.c.exported(protoZipkin, len(batch), fmt.Errorf("zipkin export of %d spans: %w", len(batch), err))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		d.c.exported(protoZipkin, len(batch), fmt.Errorf("zipkin export of %d spans: %s answered %s", len(batch), req.URL, resp.Status))
	default:
		d.c.exported(protoZipkin, len(batch), nil)
	}
	return resp, err
}

// span is one span of either SDK, driven with explicit timestamps.
type span struct {
	svc   *service
	ctx   context.Context // OTel: carries the span
	otel  trace.Span
	z     zipkin.Span
	start time.Time
}

var otelToZipkinKind = map[trace.SpanKind]model.Kind{
	trace.SpanKindServer:   model.Server,
	trace.SpanKindClient:   model.Client,
	trace.SpanKindProducer: model.Producer,
	trace.SpanKindConsumer: model.Consumer,
	trace.SpanKindInternal: model.Undetermined,
}

// start begins a span in s whose parent is parent (nil for a root span).
func (s *service) start(parent *span, name string, kind trace.SpanKind, t time.Time, attrs ...attribute.KeyValue) *span {
	if parent != nil && parent.svc != s {
		panic("BUG: in-process parent from another service; propagate instead")
	}
	if s.zt != nil {
		opts := []zipkin.SpanOption{zipkin.Kind(otelToZipkinKind[kind]), zipkin.StartTime(t)}
		if parent != nil {
			opts = append(opts, zipkin.Parent(parent.z.Context()))
		}
		sp := &span{svc: s, z: s.zt.StartSpan(name, opts...), start: t}
		sp.set(attrs...)
		return sp
	}
	ctx := context.Background()
	if parent != nil {
		ctx = parent.ctx
	}
	ctx, os := s.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(t), trace.WithAttributes(attrs...))
	return &span{svc: s, ctx: ctx, otel: os, start: t}
}

// serve begins a span in s whose parent arrived in carrier h, as a server or
// consumer would: through the real propagator's Extract.
func (s *service) serve(h http.Header, name string, kind trace.SpanKind, t time.Time, attrs ...attribute.KeyValue) *span {
	if s.zt != nil {
		sc := s.zt.Extract(zb3.ExtractHTTP(&http.Request{Header: h}))
		if sc.Err != nil || sc.TraceID.Empty() {
			s.gen.bug(fmt.Errorf("%s could not extract B3 context from %v: %v", s.name, h, sc.Err))
		}
		sp := &span{svc: s, start: t, z: s.zt.StartSpan(name,
			zipkin.Kind(otelToZipkinKind[kind]), zipkin.Parent(sc), zipkin.StartTime(t))}
		sp.set(attrs...)
		return sp
	}
	ctx := otelPropagator.Extract(context.Background(), propagation.HeaderCarrier(h))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		s.gen.bug(fmt.Errorf("%s could not extract a span context from %v", s.name, h))
	}
	ctx, os := s.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(t), trace.WithAttributes(attrs...))
	return &span{svc: s, ctx: ctx, otel: os, start: t}
}

// inject writes the span's context into h with the service's propagator.
func (sp *span) inject(h http.Header) {
	if sp.z != nil {
		req := &http.Request{Header: h}
		if err := zb3.InjectHTTP(req)(sp.z.Context()); err != nil {
			sp.svc.gen.bug(fmt.Errorf("%s could not inject B3 context: %w", sp.svc.name, err))
		}
		return
	}
	otelPropagator.Inject(sp.ctx, propagation.HeaderCarrier(h))
}

func (sp *span) set(attrs ...attribute.KeyValue) {
	if sp.z != nil {
		for _, kv := range attrs {
			sp.z.Tag(string(kv.Key), kv.Value.Emit())
		}
		return
	}
	sp.otel.SetAttributes(attrs...)
}

// peer names the remote side of a client or producer span.
func (sp *span) peer(service string) {
	if sp.z != nil {
		sp.z.SetRemoteEndpoint(&model.Endpoint{ServiceName: service})
		return
	}
	sp.otel.SetAttributes(attribute.String("peer.service", service))
}

func (sp *span) event(t time.Time, name string, attrs ...attribute.KeyValue) {
	if sp.z != nil {
		// Zipkin annotations carry no attributes: keep them on the span.
		sp.set(attrs...)
		sp.z.Annotate(t, name)
		return
	}
	sp.otel.AddEvent(name, trace.WithTimestamp(t), trace.WithAttributes(attrs...))
}

// fail marks the span as the place an error happened or passed through.
func (sp *span) fail(t time.Time, errType, msg string) {
	sp.set(attribute.String("error.type", errType))
	if sp.z != nil {
		sp.z.Tag("error", msg)
		sp.z.Annotate(t, "exception: "+msg)
		return
	}
	sp.otel.AddEvent("exception", trace.WithTimestamp(t), trace.WithAttributes(
		attribute.String("exception.type", errType),
		attribute.String("exception.message", msg)))
	sp.otel.SetStatus(codes.Error, msg)
}

func (sp *span) end(t time.Time) {
	if t.Before(sp.start) {
		panic("BUG: span ends before it starts")
	}
	if sp.z != nil {
		sp.z.FinishedWithDuration(t.Sub(sp.start))
		return
	}
	sp.otel.End(trace.WithTimestamp(t))
}
