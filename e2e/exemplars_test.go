package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// omSample is one sample as internal/omcheck prints it: Prometheus' own scrape parser
// (model/textparse) read the exposition.
type omSample struct {
	Labels    map[string]string `json:"labels"`
	Value     float64           `json:"value"`
	Exemplars []struct {
		Labels map[string]string `json:"labels"`
		Value  float64           `json:"value"`
	} `json:"exemplars"`
}

var (
	omcheckOnce sync.Once
	omcheckBin  string
	omcheckErr  error
)

// parseExposition parses body, served with contentType, with Prometheus' scrape parser
// (internal/omcheck, a module of its own, built once).
func parseExposition(t *testing.T, contentType string, body []byte) []omSample {
	t.Helper()
	omcheckOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spoor-omcheck")
		if err != nil {
			omcheckErr = err
			return
		}
		omcheckBin = filepath.Join(dir, "omcheck")
		_, file, _, _ := runtime.Caller(0)
		build := exec.Command("go", "build", "-o", omcheckBin, ".")
		build.Dir = filepath.Join(filepath.Dir(filepath.Dir(file)), "internal", "omcheck")
		if out, err := build.CombinedOutput(); err != nil {
			omcheckErr = &buildError{err: err, out: string(out)}
		}
	})
	if omcheckErr != nil {
		t.Fatalf("build internal/omcheck: %v", omcheckErr)
	}
	cmd := exec.Command(omcheckBin, "-content-type", contentType)
	cmd.Stdin = bytes.NewReader(body)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the %q exposition: %v %s\n%s", contentType, err, stderr.String(), body)
	}
	var samples []omSample
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s omSample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, s)
	}
	return samples
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func scrapeMetrics(t *testing.T, s *spoor, accept string) (string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.ep.Metrics+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return resp.Header.Get("Content-Type"), body
}

// TestMetricsExemplars: error spans sent with the OTel SDK show up at /metrics, scraped
// as Prometheus does (OpenMetrics preferred), as exemplars of the RED counters and
// duration histogram that name spans which were sent and are in the store; Prometheus'
// parser accepts the exposition; a plain text scrape still serves the collector's
// otelcol_* metrics and the same RED series.
func TestMetricsExemplars(t *testing.T) {
	t.Parallel()
	s := startSpoor(t, t.TempDir())
	ctx := ctxTimeout(t, 30*time.Second)
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.ep.OTLPHTTP), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(
		attribute.String("service.name", "exemplar-payments"))))
	tracer := tp.Tracer("e2e")
	errTraces, errSpans, allTraces := map[string]bool{}, map[string]bool{}, map[string]bool{}
	base := time.Now()
	const n = 6
	for i := range n {
		_, sp := tracer.Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base))
		if i%2 == 0 {
			sp.SetStatus(codes.Error, "card declined")
			errTraces[sp.SpanContext().TraceID().String()] = true
			errSpans[sp.SpanContext().SpanID().String()] = true
		}
		allTraces[sp.SpanContext().TraceID().String()] = true
		sp.End(trace.WithTimestamp(base.Add(time.Duration(i+1) * 30 * time.Millisecond)))
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("flush OTel SDK: %v", err)
	}

	// As Prometheus asks (its default scrape_protocols).
	ct, body := scrapeMetrics(t, s, "application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1")
	if !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q, want OpenMetrics", ct)
	}
	series := `service_name="exemplar-payments",span_kind="server",span_name="charge"`
	matches := func(sm omSample, name string) bool {
		return sm.Labels["__name__"] == name && sm.Labels["service_name"] == "exemplar-payments" && sm.Labels["span_name"] == "charge" &&
			sm.Labels["span_kind"] == "server"
	}
	checked := map[string]int{}
	for _, sm := range parseExposition(t, ct, body) {
		for _, name := range []string{"spoor_span_calls_total", "spoor_span_errors_total", "spoor_span_duration_seconds_bucket"} {
			if !matches(sm, name) {
				continue
			}
			switch name {
			case "spoor_span_calls_total":
				if sm.Value != n {
					t.Errorf("%s{%s} = %v, want %d", name, series, sm.Value, n)
				}
			case "spoor_span_errors_total":
				if sm.Value != n/2 {
					t.Errorf("%s{%s} = %v, want %d", name, series, sm.Value, n/2)
				}
			}
			for _, ex := range sm.Exemplars {
				tid, sid := ex.Labels["trace_id"], ex.Labels["span_id"]
				want := allTraces
				if name == "spoor_span_errors_total" {
					want = errTraces
					if !errSpans[sid] {
						t.Errorf("%s exemplar span %s is not one of the error spans sent", name, sid)
					}
				}
				if !want[tid] {
					t.Errorf("%s exemplar trace %q is not one of the traces sent (%v)", name, tid, want)
					continue
				}
				if _, ok := s.trace(tid, 10*time.Second); !ok {
					t.Errorf("%s exemplar trace %s is not in the store", name, tid)
				}
				checked[name]++
			}
		}
	}
	for _, name := range []string{"spoor_span_calls_total", "spoor_span_errors_total", "spoor_span_duration_seconds_bucket"} {
		if checked[name] == 0 {
			t.Errorf("no exemplar on %s{%s}:\n%s", name, series, body)
		}
	}

	// A plain scrape: the text format, as before, with the collector's metrics.
	ct, body = scrapeMetrics(t, s, "")
	if !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("plain scrape: Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the text exposition does not parse: %v", err)
	}
	for _, want := range []string{"otelcol_receiver_accepted_spans", "otelcol_exporter_sent_spans", "otelcol_process_uptime",
		"spoor_storage_spans_written", "spoor_ingest_inflight_spans", "spoor_service_graph_unmatched_spans_total",
		"spoor_span_calls_total", "spoor_span_errors_total", "spoor_span_duration_seconds", "target_info"} {
		if fams[want] == nil {
			t.Errorf("plain /metrics lacks %s", want)
		}
	}
	if n := acceptedSpans(string(body), "otlp"); n != 6 {
		t.Errorf("otelcol_receiver_accepted_spans for otlp = %v, want 6", n)
	}
	if len(parseExposition(t, ct, body)) == 0 {
		t.Error("Prometheus' parser found no sample in the text exposition")
	}
	// promtool check metrics' rules hold for the RED families.
	var red []*dto.MetricFamily
	for name, f := range fams {
		if strings.HasPrefix(name, "spoor_span_") {
			red = append(red, f)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(red).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
	if names := slices.Sorted(func(yield func(string) bool) {
		for _, f := range red {
			if !yield(f.GetName()) {
				return
			}
		}
	}); len(names) != 3 {
		t.Errorf("RED families %v, want calls, errors and the duration histogram", names)
	}
}
