package metrics

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spoortrace/spoor/internal/proc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// collector is a real Prometheus endpoint (client_golang's promhttp, as the collector's
// telemetry serves) standing in for the collector's own.
func collector(t *testing.T) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otelcol_receiver_accepted_spans", Help: "Accepted."}, []string{"receiver"})
	c.WithLabelValues("otlp").Add(7)
	shadowed := prometheus.NewCounter(prometheus.CounterOpts{Name: "spoor_span_calls_total", Help: "The SDK's copy."})
	shadowed.Add(1)
	reg.MustRegister(c, shadowed)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv
}

// own are families as spoor_analytics registers them: a counter with an exemplar and a
// histogram of weighted (float) counts.
func own() []*dto.MetricFamily {
	counter, histogram := dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM
	labels := []*dto.LabelPair{{Name: proto.String("service_name"), Value: proto.String("pay")}}
	ex := &dto.Exemplar{Label: []*dto.LabelPair{{Name: proto.String("trace_id"), Value: proto.String(traceID)}},
		Value: proto.Float64(1), Timestamp: timestamppb.New(time.Unix(1700000000, 0))}
	return []*dto.MetricFamily{
		{Name: proto.String("spoor_span_calls_total"), Help: proto.String("Calls."), Type: &counter,
			Metric: []*dto.Metric{{Label: labels, Counter: &dto.Counter{Value: proto.Float64(42), Exemplar: ex}}}},
		{Name: proto.String("spoor_span_duration_seconds"), Help: proto.String("Durations."), Type: &histogram,
			Metric: []*dto.Metric{{Label: labels, Histogram: &dto.Histogram{SampleSum: proto.Float64(3.5), SampleCountFloat: proto.Float64(5.4),
				Bucket: []*dto.Bucket{
					{UpperBound: proto.Float64(0.1), CumulativeCountFloat: proto.Float64(1.4), Exemplar: ex},
					{UpperBound: proto.Float64(math.Inf(1)), CumulativeCountFloat: proto.Float64(5.4)},
				}}}}},
	}
}

func start(t *testing.T, collectorEndpoint string) (*Extension, string) {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.Endpoint, cfg.CollectorEndpoint, cfg.ScrapeTimeout = freeAddr(t), collectorEndpoint, time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(Type), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ext.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return ext.(*Extension), "http://" + cfg.Endpoint + "/metrics"
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := proc.FreeAddr() // outside the ephemeral range: see proc.FreeAddr
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func scrape(t *testing.T, url, accept string) (http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
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
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, err, body)
	}
	return resp.Header, string(body)
}

func TestTextScrape(t *testing.T) {
	col := collector(t)
	ext, url := start(t, strings.TrimPrefix(col.URL, "http://"))
	unregister := ext.RegisterFamilies(own)
	h, body := scrape(t, url, "")
	if ft := expfmt.ResponseFormat(h).FormatType(); ft != expfmt.TypeTextPlain {
		t.Fatalf("Content-Type %q, want the text format", h.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the text format does not parse: %v\n%s", err, body)
	}
	if v := fams["otelcol_receiver_accepted_spans"].GetMetric()[0].GetCounter().GetValue(); v != 7 {
		t.Errorf("the collector's counter = %v, want 7", v)
	}
	// The registered family wins over the collector's of the same name.
	if calls := fams["spoor_span_calls_total"].GetMetric(); len(calls) != 1 || calls[0].GetCounter().GetValue() != 42 {
		t.Errorf("spoor_span_calls_total = %v, want only the registered 42", calls)
	}
	dur := fams["spoor_span_duration_seconds"]
	if dur.GetType() != dto.MetricType_HISTOGRAM || dur.Metric[0].Histogram.GetSampleCountFloat() != 5.4 {
		t.Errorf("histogram %v, want the weighted count 5.4", dur)
	}
	if f := fams["spoor_metrics_collector_scrape_failures_total"]; f == nil || f.Metric[0].Counter.GetValue() != 0 {
		t.Errorf("scrape failures %v, want 0", f)
	}
	unregister()
	_, body = scrape(t, url, "")
	fams, err = p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if calls := fams["spoor_span_calls_total"].GetMetric(); len(calls) != 1 || calls[0].GetCounter().GetValue() != 1 {
		t.Errorf("after unregistering, spoor_span_calls_total = %v, want the collector's 1", calls)
	}
	if fams["spoor_span_duration_seconds"] != nil {
		t.Error("the unregistered histogram is still served")
	}
}

func TestOpenMetricsScrape(t *testing.T) {
	col := collector(t)
	ext, url := start(t, strings.TrimPrefix(col.URL, "http://"))
	ext.RegisterFamilies(own)
	h, body := scrape(t, url, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Fatalf("Content-Type %q, want OpenMetrics 1.0.0", ct)
	}
	for _, want := range []string{
		`spoor_span_calls_total{service_name="pay"} 42.0 # {trace_id="` + traceID + `"} 1.0 1.7e+09`,
		// Float histogram counts rounded: OpenMetrics 1.0 has none.
		`spoor_span_duration_seconds_bucket{service_name="pay",le="0.1"} 1 # {trace_id="` + traceID + `"} 1.0 1.7e+09`,
		`spoor_span_duration_seconds_count{service_name="pay"} 5`,
		// A counter without _total keeps its sample name, typed unknown.
		"# TYPE otelcol_receiver_accepted_spans unknown\n",
		`otelcol_receiver_accepted_spans{receiver="otlp"} 7.0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("OpenMetrics lacks %q:\n%s", want, body)
		}
	}
	if !strings.HasSuffix(body, "# EOF\n") {
		t.Error("no # EOF at the end")
	}
}

func TestProtobufAndGzip(t *testing.T) {
	ext, url := start(t, "")
	ext.RegisterFamilies(own)
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	req.Header.Set("Accept-Encoding", "gzip")
	// A transport of its own: the default one would ask for gzip and undo it itself.
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	dec := expfmt.NewDecoder(zr, expfmt.ResponseFormat(resp.Header))
	var names []string
	for {
		f := &dto.MetricFamily{}
		if err := dec.Decode(f); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		names = append(names, f.GetName())
		if f.GetName() == "spoor_span_calls_total" {
			if ex := f.Metric[0].Counter.GetExemplar(); ex == nil || ex.Label[0].GetValue() != traceID {
				t.Errorf("protobuf exemplar %v, want trace %s", ex, traceID)
			}
		}
	}
	// Without a collector endpoint, only the registered families (and no failure counter).
	if strings.Join(names, ",") != "spoor_span_calls_total,spoor_span_duration_seconds" {
		t.Errorf("families %v", names)
	}
}

// TestCollectorDown: when the collector's endpoint does not answer, the registered
// families are still served and the failure is counted.
func TestCollectorDown(t *testing.T) {
	ext, url := start(t, freeAddr(t))
	ext.RegisterFamilies(own)
	_, body := scrape(t, url, "")
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if fams["spoor_span_calls_total"] == nil {
		t.Error("registered families not served while the collector's endpoint is down")
	}
	if f := fams["spoor_metrics_collector_scrape_failures_total"]; f == nil || f.Metric[0].Counter.GetValue() != 1 {
		t.Errorf("scrape failures %v, want 1", f)
	}
}

func TestRequestLimits(t *testing.T) {
	ext, url := start(t, "")
	resp, err := http.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	// Past maxScrapes at once: 503 at once, not a queue.
	release := make(chan struct{})
	for range maxScrapes {
		ext.RegisterFamilies(func() []*dto.MetricFamily { <-release; return nil })
	}
	done := make(chan int, maxScrapes)
	for range maxScrapes {
		go func() {
			r, err := http.Get(url)
			if err != nil {
				done <- 0
				return
			}
			r.Body.Close()
			done <- r.StatusCode
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(ext.sem) < maxScrapes && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("scrape %d at once: %d, want 503", maxScrapes+1, resp.StatusCode)
	}
	close(release)
	for range maxScrapes {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a held scrape ended with %d", code)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Endpoint: "localhost", ScrapeTimeout: time.Second}, "not host:port"},
		{Config{Endpoint: "localhost:1", CollectorEndpoint: "x", ScrapeTimeout: time.Second}, "collector_endpoint"},
		{Config{Endpoint: "localhost:1", CollectorEndpoint: "localhost:1", ScrapeTimeout: time.Second}, "the endpoint itself"},
		{Config{Endpoint: "localhost:1"}, "scrape_timeout"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.cfg, err, c.want)
		}
	}
	if err := createDefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}
