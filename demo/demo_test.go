package demo_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/spoortrace/spoor/demo"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testConfig(r *receivers) demo.Config {
	cfg := demo.DefaultConfig()
	cfg.OTLPGRPCEndpoint = r.grpcAddr
	cfg.OTLPHTTPEndpoint = r.httpAddr
	cfg.ZipkinEndpoint = r.zipkinAddr
	cfg.Seed = 42
	cfg.FlushTimeout = 10 * time.Second
	return cfg
}

// trace is one trace as received, with its spans indexed by ID.
type trace struct {
	spans []rspan
	byID  map[pcommon.SpanID]rspan
}

func (tr trace) services() map[string]bool {
	out := map[string]bool{}
	for _, s := range tr.spans {
		out[s.service] = true
	}
	return out
}

func (tr trace) find(service, name string) []rspan {
	var out []rspan
	for _, s := range tr.spans {
		if s.service == service && s.name == name {
			out = append(out, s)
		}
	}
	return out
}

func (tr trace) children(id pcommon.SpanID) []rspan {
	var out []rspan
	for _, s := range tr.spans {
		if s.parentID == id {
			out = append(out, s)
		}
	}
	return out
}

func groupTraces(spans []rspan) map[pcommon.TraceID]trace {
	out := map[pcommon.TraceID]trace{}
	for _, s := range spans {
		tr := out[s.traceID]
		if tr.byID == nil {
			tr.byID = map[pcommon.SpanID]rspan{}
		}
		tr.spans = append(tr.spans, s)
		tr.byID[s.spanID] = s
		out[s.traceID] = tr
	}
	return out
}

func TestRunSendsPaymentFlowsOverAllTransports(t *testing.T) {
	r := startReceivers(t)
	cfg := testConfig(r)
	cfg.Rate = 30
	cfg.Duration = 2 * time.Second

	begin := time.Now()
	stats, err := demo.Run(context.Background(), cfg, zaptest.NewLogger(t))
	elapsed := time.Since(begin)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed < cfg.Duration || elapsed > cfg.Duration+5*time.Second {
		t.Errorf("Run returned after %v, want just after %v", elapsed, cfg.Duration)
	}
	t.Logf("stats: %+v", stats)

	spans := r.sink.all()
	perProto := map[string]int64{}
	for _, s := range spans {
		perProto[s.proto]++
	}
	// Stats say what the receivers acknowledged: nothing more, nothing less.
	if stats.OTLPGRPCSpans != perProto["otlp/grpc"] || stats.OTLPHTTPSpans != perProto["otlp/http"] ||
		stats.ZipkinSpans != perProto["zipkin"] {
		t.Errorf("stats grpc/http/zipkin = %d/%d/%d spans, receivers got %v",
			stats.OTLPGRPCSpans, stats.OTLPHTTPSpans, stats.ZipkinSpans, perProto)
	}
	for _, p := range []string{"otlp/grpc", "otlp/http", "zipkin"} {
		if perProto[p] == 0 {
			t.Errorf("no spans arrived over %s", p)
		}
	}
	if stats.Errors != 0 || stats.FailedSpans != 0 {
		t.Errorf("stats report %d failed exports (%d spans) against healthy receivers", stats.Errors, stats.FailedSpans)
	}
	if want := int64(cfg.Rate * cfg.Duration.Seconds()); stats.Traces != want {
		t.Errorf("stats.Traces = %d, want %d at %v/s for %v", stats.Traces, want, cfg.Rate, cfg.Duration)
	}

	traces := groupTraces(spans)
	if int64(len(traces)) != stats.Traces {
		t.Errorf("receivers got %d distinct trace IDs, stats say %d traces", len(traces), stats.Traces)
	}

	var (
		otelToZipkin, zipkinToOTel, maxServices  int
		declines, retries, openFails, sagas      int64
		fraudFailures                            int64
		sawGRPCStatus, sawDB, sawProducerConsume bool
	)
	for id, tr := range traces {
		// Every trace is whole: one root, the gateway's, and every other
		// span's parent arrived, whatever transport it came on.
		var roots []rspan
		for _, s := range tr.spans {
			if s.end.Before(s.start) {
				t.Errorf("trace %s: span %s/%s ends before it starts", id, s.service, s.name)
			}
			if s.parentID.IsEmpty() {
				roots = append(roots, s)
				continue
			}
			parent, ok := tr.byID[s.parentID]
			if !ok {
				t.Errorf("trace %s: span %s/%s (%s) has parent %s that never arrived", id, s.service, s.name, s.proto, s.parentID)
				continue
			}
			if parent.service != s.service {
				// A hop between services: client→server or producer→consumer.
				switch {
				case parent.kind == ptrace.SpanKindClient && s.kind == ptrace.SpanKindServer:
				case parent.kind == ptrace.SpanKindProducer && s.kind == ptrace.SpanKindConsumer:
					sawProducerConsume = true
				default:
					t.Errorf("trace %s: %s %s/%s calls %s %s/%s", id, parent.kind, parent.service, parent.name, s.kind, s.service, s.name)
				}
			}
			if parent.proto != "zipkin" && s.proto == "zipkin" {
				otelToZipkin++
			}
			if parent.proto == "zipkin" && s.proto != "zipkin" {
				zipkinToOTel++
			}
		}
		if len(roots) != 1 || roots[0].service != "api-gateway" || roots[0].name != "POST /checkout" || roots[0].kind != ptrace.SpanKindServer {
			t.Errorf("trace %s: roots %v, want one api-gateway SERVER POST /checkout", id, roots)
			continue
		}
		root := roots[0]
		for _, k := range []string{"http.request.method", "url.path", "http.response.status_code", "user.id", "payment.amount", "payment.currency"} {
			if _, ok := root.attrs[k]; !ok {
				t.Errorf("trace %s: root span lacks %s: %v", id, k, root.attrs)
			}
		}
		maxServices = max(maxServices, len(tr.services()))

		for _, s := range tr.spans {
			if _, ok := s.attrs["rpc.grpc.status_code"]; ok {
				sawGRPCStatus = true
			}
			if s.attrs["db.system"] == "postgresql" {
				sawDB = true
			}
		}

		// Card declined: the charge fails with a decline code, recorded as
		// an attribute and an event.
		for _, ch := range tr.find("payment-service", "charge") {
			if _, ok := ch.attrs["payment.decline_code"]; !ok {
				continue
			}
			declines++
			if ch.status != ptrace.StatusCodeError || !slices.Contains(ch.events, "payment.declined") {
				t.Errorf("trace %s: declined charge has status %v events %v", id, ch.status, ch.events)
			}
			if root.attrs["http.response.status_code"] != int64(http.StatusPaymentRequired) {
				t.Errorf("trace %s: declined checkout answered %v", id, root.attrs["http.response.status_code"])
			}
		}

		// Timeout and retry: two attempts from the same parent, the first
		// erring with a timeout event, the second marked as a resend.
		attempts := tr.find("order-service", "POST /reservations")
		if len(attempts) == 2 {
			slices.SortFunc(attempts, func(a, b rspan) int { return a.start.Compare(b.start) })
			first, second := attempts[0], attempts[1]
			if first.parentID != second.parentID || first.status != ptrace.StatusCodeError ||
				!slices.Contains(first.events, "timeout") || second.attrs["http.resend_count"] != int64(1) ||
				second.status == ptrace.StatusCodeError || !second.start.After(first.end) {
				t.Errorf("trace %s: retry attempts do not look like timeout + retry: %+v / %+v", id, first, second)
			} else {
				retries++
			}
		} else if len(attempts) != 1 {
			t.Errorf("trace %s: %d reservation attempts", id, len(attempts))
		}

		// Fraud-service outage, then the breaker fails fast without a call.
		for _, s := range tr.find("fraud-service", "fraud.score") {
			if s.status == ptrace.StatusCodeError {
				fraudFailures++
			}
		}
		for _, s := range tr.spans {
			if s.attrs["circuit_breaker.state"] != "open" {
				continue
			}
			openFails++
			if s.status != ptrace.StatusCodeError || len(tr.children(s.spanID)) != 0 || tr.services()["fraud-service"] {
				t.Errorf("trace %s: open-breaker span %s has status %v, %d children, services %v",
					id, s.name, s.status, len(tr.children(s.spanID)), tr.services())
			}
		}

		// Saga: the ledger append fails, then payment refunds and order
		// cancels, in that order.
		if la := tr.find("ledger-service", "ledger.append"); len(la) == 1 && la[0].status == ptrace.StatusCodeError {
			refund, cancel := tr.find("payment-service", "refund"), tr.find("order-service", "CancelOrder")
			if len(refund) != 1 || len(cancel) != 1 || refund[0].start.Before(la[0].end) || cancel[0].start.Before(refund[0].end) ||
				refund[0].attrs["saga.compensation"] != true || cancel[0].attrs["saga.compensation"] != true {
				t.Errorf("trace %s: failed ledger append without refund then CancelOrder: %v %v", id, refund, cancel)
			} else {
				sagas++
			}
		}
	}

	if otelToZipkin == 0 || zipkinToOTel == 0 {
		t.Errorf("cross-protocol parent links: OTel→Zipkin %d, Zipkin→OTel %d; want both", otelToZipkin, zipkinToOTel)
	}
	if maxServices < 5 {
		t.Errorf("at most %d services in one trace, want at least 5", maxServices)
	}
	if !sawGRPCStatus || !sawDB || !sawProducerConsume {
		t.Errorf("saw grpc status %v, postgresql spans %v, producer→consumer %v", sawGRPCStatus, sawDB, sawProducerConsume)
	}
	for _, c := range []struct {
		kind          string
		got, reported int64
	}{
		{"card declined", declines, stats.CardDeclines},
		{"timeout + retry", retries, stats.TimeoutRetries},
		{"fraud-service failure", fraudFailures, stats.FraudFailures},
		{"circuit breaker open", openFails, stats.CircuitOpenRejections},
		{"saga compensation", sagas, stats.SagaCompensations},
	} {
		if c.got == 0 {
			t.Errorf("no %s in %d traces", c.kind, len(traces))
		}
		if c.got != c.reported {
			t.Errorf("%s: receivers show %d, stats say %d", c.kind, c.got, c.reported)
		}
	}
	// The breaker opens only after consecutive failures.
	if openFails > 0 && fraudFailures < 3 {
		t.Errorf("breaker opened after %d fraud-service failures, want at least 3", fraudFailures)
	}
}

// One trace, followed hop by hop: the Zipkin half shares the 128-bit trace ID
// and hangs off the OTel client spans, and the other way round.
func TestPropagationAcrossSDKs(t *testing.T) {
	r := startReceivers(t)
	cfg := testConfig(r)
	cfg.Rate = 20
	cfg.Duration = 300 * time.Millisecond

	if _, err := demo.Run(context.Background(), cfg, zaptest.NewLogger(t)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	traces := groupTraces(r.sink.all())
	checked := 0
	for id, tr := range traces {
		scores := tr.find("fraud-service", "fraud.score")
		if len(scores) != 1 || scores[0].status == ptrace.StatusCodeError {
			continue
		}
		score := scores[0]
		if id == (pcommon.TraceID{}) || [8]byte(id[:8]) == [8]byte{} {
			t.Errorf("trace %s: zipkin spans have a 64-bit trace ID", id)
		}
		call := tr.byID[score.parentID]
		if call.proto != "otlp/grpc" || call.service != "payment-service" || call.name != "POST /fraud/score" || call.kind != ptrace.SpanKindClient {
			t.Errorf("trace %s: fraud.score's parent is %+v, want payment-service's OTLP client span", id, call)
		}
		if score.resource["service.version"] == nil || score.resource["host.name"] == nil || score.resource["deployment.environment"] != "demo" {
			t.Errorf("trace %s: fraud-service resource %v", id, score.resource)
		}
		if la := tr.find("ledger-service", "ledger.append"); len(la) != 1 || la[0].status == ptrace.StatusCodeError {
			continue // declined, or the saga: nothing posted
		}
		consumed := tr.find("notification-service", "process ledger.entry_posted")
		if len(consumed) != 1 {
			t.Errorf("trace %s: %d ledger.entry_posted consumers", id, len(consumed))
			continue
		}
		pub := tr.byID[consumed[0].parentID]
		if consumed[0].proto != "otlp/http" || pub.proto != "zipkin" || pub.service != "ledger-service" ||
			pub.kind != ptrace.SpanKindProducer || consumed[0].kind != ptrace.SpanKindConsumer {
			t.Errorf("trace %s: consumer %+v has parent %+v, want ledger-service's Zipkin producer", id, consumed[0], pub)
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no healthy trace reached fraud-service in %d traces", len(traces))
	}
}

func TestRunStopsWhenContextIsCancelled(t *testing.T) {
	r := startReceivers(t)
	cfg := testConfig(r)
	cfg.Rate = 50
	cfg.Duration = 0 // until cancelled

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	begin := time.Now()
	stats, err := demo.Run(ctx, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed := time.Since(begin); elapsed > 5*time.Second {
		t.Errorf("Run took %v after a 500ms context", elapsed)
	}
	if stats.Traces < 10 || stats.Traces > 26 {
		t.Errorf("%d traces in 500ms at 50/s", stats.Traces)
	}
	// Everything started was flushed although the context was gone.
	if got := int64(len(r.sink.all())); got != stats.Spans() || got == 0 {
		t.Errorf("receivers got %d spans, stats say %d", got, stats.Spans())
	}
}

func TestRunReportsFailedExports(t *testing.T) {
	r := startReceivers(t)
	r.sink.zipkinStatus = http.StatusServiceUnavailable
	cfg := testConfig(r)
	cfg.Rate = 20
	cfg.Duration = 300 * time.Millisecond

	stats, err := demo.Run(context.Background(), cfg, zaptest.NewLogger(t))
	if err == nil {
		t.Fatal("Run reported no error although every Zipkin export was refused")
	}
	t.Logf("Run: %v", err)
	if stats.Errors == 0 || stats.FailedSpans == 0 || stats.ZipkinSpans != 0 {
		t.Errorf("stats %+v, want failed Zipkin exports and no Zipkin spans", stats)
	}
	if stats.OTLPGRPCSpans == 0 || stats.OTLPHTTPSpans == 0 {
		t.Errorf("OTLP spans should still get through: %+v", stats)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	cfg := demo.DefaultConfig()
	cfg.Rate = 0
	cfg.ZipkinEndpoint = "http://localhost:9411/api/v2/spans"
	_, err := demo.Run(context.Background(), cfg, nil)
	if err == nil {
		t.Fatal("Run accepted rate 0 and a URL as Zipkin endpoint")
	}
	for _, want := range []string{"rate", "Zipkin endpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("SPOOR_OTLP_GRPC_ENDPOINT", "")
	t.Setenv("SPOOR_OTLP_HTTP_ENDPOINT", "")
	t.Setenv("SPOOR_ZIPKIN_ENDPOINT", "")
	cfg := demo.ConfigFromEnv()
	if cfg.OTLPGRPCEndpoint != "localhost:4317" || cfg.OTLPHTTPEndpoint != "localhost:4318" || cfg.ZipkinEndpoint != "localhost:9411" {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.ZipkinURL() != "http://localhost:9411/api/v2/spans" {
		t.Errorf("ZipkinURL = %s", cfg.ZipkinURL())
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}

	t.Setenv("SPOOR_OTLP_GRPC_ENDPOINT", "spoor:14317")
	t.Setenv("SPOOR_OTLP_HTTP_ENDPOINT", "spoor:14318")
	t.Setenv("SPOOR_ZIPKIN_ENDPOINT", "spoor:19411")
	cfg = demo.ConfigFromEnv()
	if cfg.OTLPGRPCEndpoint != "spoor:14317" || cfg.OTLPHTTPEndpoint != "spoor:14318" || cfg.ZipkinEndpoint != "spoor:19411" {
		t.Errorf("from env: %+v", cfg)
	}
	if cfg.ZipkinURL() != "http://spoor:19411/api/v2/spans" {
		t.Errorf("ZipkinURL = %s", cfg.ZipkinURL())
	}
}

func TestCommandRunsAgainstEnvEndpoints(t *testing.T) {
	r := startReceivers(t)
	cmd := demo.NewCommand()
	t.Setenv("SPOOR_OTLP_GRPC_ENDPOINT", r.grpcAddr)
	t.Setenv("SPOOR_OTLP_HTTP_ENDPOINT", r.httpAddr)
	t.Setenv("SPOOR_ZIPKIN_ENDPOINT", r.zipkinAddr)
	for name, def := range map[string]string{"rate": "10", "duration": "30s", "seed": "1"} {
		if f := cmd.Flags().Lookup(name); f == nil || f.DefValue != def {
			t.Errorf("--%s: %+v, want default %s", name, f, def)
		}
	}
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--rate", "20", "--duration", "250ms", "--seed", "3"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("demo command: %v", err)
	}
	if !strings.Contains(out.String(), "traces 5, spans ") {
		t.Errorf("output %q, want 5 traces reported", out.String())
	}
	if len(r.sink.all()) == 0 {
		t.Error("the command sent nothing to the endpoints in the environment")
	}
}

// With nothing listening, Run must say so promptly instead of retrying for a
// minute, and count nothing as delivered.
func TestRunWithNoSpoorFailsFast(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := demo.DefaultConfig()
	cfg.OTLPGRPCEndpoint, cfg.OTLPHTTPEndpoint, cfg.ZipkinEndpoint = closed, closed, closed
	cfg.Rate = 20
	cfg.Duration = 200 * time.Millisecond
	cfg.ExportTimeout = 500 * time.Millisecond
	cfg.FlushTimeout = 3 * time.Second

	begin := time.Now()
	stats, err := demo.Run(context.Background(), cfg, zaptest.NewLogger(t))
	if elapsed := time.Since(begin); elapsed > 8*time.Second {
		t.Errorf("Run took %v against a closed port", elapsed)
	}
	if err == nil {
		t.Fatal("Run reported no error with nothing listening")
	}
	if stats.Spans() != 0 || stats.Errors == 0 || stats.Traces == 0 {
		t.Errorf("stats %+v, want traces played, none delivered, errors counted", stats)
	}
}
