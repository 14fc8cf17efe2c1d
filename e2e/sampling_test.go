package e2e

import (
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestHeadSampling starts spoor with SPOOR_SAMPLING_PERCENTAGE=10 (and 100), sends 2,000 traces of
// three spans over two services with the OTel SDK (its batcher splits traces across
// requests), and checks that about 10% are stored, each one whole, with th written (10% at 4 hex digits is th:e666).
func TestHeadSampling(t *testing.T) {
	t.Parallel()
	t.Run("10pct", func(t *testing.T) { testHeadSampling(t, "10", 0.1, "ot=th:e666") })
	// 100%, the default, passes spans through untouched: no th, every trace stored.
	t.Run("100pct", func(t *testing.T) { testHeadSampling(t, "100", 1, nil) })
}

func testHeadSampling(t *testing.T, pct string, p float64, wantTS any) {
	s := startSpoor(t, t.TempDir(), "SPOOR_SAMPLING_PERCENTAGE="+pct)
	ctx := ctxTimeout(t, 2*time.Minute)

	provider := func(service string) *sdktrace.TracerProvider {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.ep.OTLPGRPC), otlptracegrpc.WithInsecure())
		if err != nil {
			t.Fatalf("exporter: %v", err)
		}
		return sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(128), sdktrace.WithBatchTimeout(20*time.Millisecond),
				sdktrace.WithBlocking()), // never drop on the sender side: the test counts what spoor kept,
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	}
	front, back := provider("sampling-frontend"), provider("sampling-backend")
	ft, bt := front.Tracer("e2e"), back.Tracer("e2e")

	const traces = 2000
	ids := make([]string, 0, traces)
	for i := 0; i < traces; i++ {
		tctx, root := ft.Start(ctx, "GET /orders", trace.WithSpanKind(trace.SpanKindServer))
		cctx, call := ft.Start(tctx, "call backend", trace.WithSpanKind(trace.SpanKindClient))
		_, srv := bt.Start(cctx, "load order", trace.WithSpanKind(trace.SpanKindServer))
		srv.End()
		call.End()
		root.End()
		ids = append(ids, root.SpanContext().TraceID().String())
	}
	// Shutdown flushes; spoor acknowledges only what is on disk, so every stored trace
	// can be read right after.
	for _, tp := range []*sdktrace.TracerProvider{front, back} {
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("flush spans: %v", err)
		}
	}

	stored := 0
	for _, id := range ids {
		tr, ok := s.trace(id, 0)
		if !ok {
			continue
		}
		stored++
		if len(tr.Spans) != 3 {
			t.Errorf("trace %s stored with %d of 3 spans", id, len(tr.Spans))
			continue
		}
		for _, sp := range tr.Spans {
			if ts, _ := tag(sp.Tags, "w3c.tracestate"); ts != wantTS {
				t.Errorf("trace %s span %s: tracestate %v, want %v", id, sp.SpanID, ts, wantTS)
			}
		}
	}
	want, sd := traces*p, math.Sqrt(traces*p*(1-p))
	if math.Abs(float64(stored)-want) > 4*sd {
		t.Fatalf("stored %d of %d traces, want %.0f ± %.0f", stored, traces, want, 4*sd)
	}
	t.Logf("stored %d of %d traces at %s%%", stored, traces, pct)
}
