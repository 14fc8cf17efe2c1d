package metrics

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

const (
	// maxScrapes is how many scrapes are served at once; more get 503.
	maxScrapes = 4
	// maxCollectorBody bounds what is read from the collector's endpoint.
	maxCollectorBody = 64 << 20
)

// Extension serves /metrics. It is safe for concurrent use.
type Extension struct {
	cfg *Config
	ts  component.TelemetrySettings

	mu        sync.Mutex
	gatherers map[uint64]func() []*dto.MetricFamily
	nextID    uint64

	client   *http.Client
	srv      *http.Server
	served   chan struct{}
	sem      chan struct{}
	failures atomic.Uint64
	failing  atomic.Bool

	// formats are the formats offered to scrapers, in order of preference (as promhttp
	// with OpenMetrics enabled offers them).
	formats []expfmt.Format
}

var _ component.Component = (*Extension)(nil)

func newExtension(cfg *Config, ts component.TelemetrySettings) *Extension {
	om0, err := expfmt.NewOpenMetricsFormat(expfmt.OpenMetricsVersion_0_0_1)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return &Extension{
		cfg: cfg, ts: ts,
		gatherers: map[uint64]func() []*dto.MetricFamily{},
		sem:       make(chan struct{}, maxScrapes),
		// Loopback: compressing would only cost CPU on both sides.
		client: &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConns: 2, IdleConnTimeout: time.Minute,
			ResponseHeaderTimeout: cfg.ScrapeTimeout}},
		formats: []expfmt.Format{expfmt.NewFormat(expfmt.TypeOpenMetrics), om0,
			expfmt.NewFormat(expfmt.TypeProtoDelim), expfmt.NewFormat(expfmt.TypeTextPlain)},
	}
}

// RegisterFamilies adds gather to what every scrape serves; its families win over the
// collector's of the same name (for a histogram or summary, over its _bucket, _sum and
// _count families too). gather is called from the scrape's goroutine and must return
// families it no longer touches. The returned function withdraws it.
func (e *Extension) RegisterFamilies(gather func() []*dto.MetricFamily) (unregister func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.nextID
	e.nextID++
	e.gatherers[id] = gather
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.gatherers, id)
	}
}

// Start listens on the endpoint.
func (e *Extension) Start(ctx context.Context, _ component.Host) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", e.cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", Type, e.cfg.Endpoint, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", e.serveMetrics)
	e.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      e.cfg.ScrapeTimeout + 20*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(e.ts.Logger),
	}
	e.served = make(chan struct{})
	go func() {
		defer close(e.served)
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.ts.Logger.Error("metrics endpoint stopped", zap.Error(err))
		}
	}()
	return nil
}

// Shutdown stops the server. Safe without Start and twice.
func (e *Extension) Shutdown(ctx context.Context) error {
	if e.srv == nil {
		return nil
	}
	err := e.srv.Shutdown(ctx)
	<-e.served
	e.srv = nil
	e.client.CloseIdleConnections()
	return err
}

func (e *Extension) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	select {
	case e.sem <- struct{}{}:
		defer func() { <-e.sem }()
	default:
		http.Error(w, "too many scrapes at once", http.StatusServiceUnavailable)
		return
	}
	fams := e.gather(r.Context())
	format := expfmt.NegotiateAccept(r.Header, e.formats...)
	openMetrics := format.FormatType() == expfmt.TypeOpenMetrics
	w.Header().Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		out = gz
	}
	enc := expfmt.NewEncoder(out, format)
	for _, f := range fams {
		if openMetrics {
			f = wholeHistograms(f)
		}
		if err := enc.Encode(f); err != nil {
			// The status is sent; all that can be done is to stop.
			e.ts.Logger.Debug("encode metrics", zap.String("family", f.GetName()), zap.Error(err))
			return
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			e.ts.Logger.Debug("finish metrics", zap.Error(err))
		}
	}
}

func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}

// gather returns the registered families and the collector's, sorted by name.
func (e *Extension) gather(ctx context.Context) []*dto.MetricFamily {
	e.mu.Lock()
	gs := make([]func() []*dto.MetricFamily, 0, len(e.gatherers))
	for _, g := range e.gatherers {
		gs = append(gs, g)
	}
	e.mu.Unlock()
	var fams []*dto.MetricFamily
	taken := map[string]bool{}
	for _, g := range gs {
		for _, f := range g() {
			if taken[f.GetName()] {
				continue
			}
			fams = append(fams, f)
			for _, n := range familyNames(f) {
				taken[n] = true
			}
		}
	}
	if e.cfg.CollectorEndpoint != "" {
		col, err := e.scrapeCollector(ctx)
		if err != nil {
			e.failures.Add(1)
			if !e.failing.Swap(true) {
				e.ts.Logger.Warn("the collector's metrics endpoint does not answer; serving Spoor's own metrics only",
					zap.String("collector_endpoint", e.cfg.CollectorEndpoint), zap.Error(err))
			}
		} else if e.failing.Swap(false) {
			e.ts.Logger.Info("the collector's metrics endpoint answers again", zap.String("collector_endpoint", e.cfg.CollectorEndpoint))
		}
		for _, f := range col {
			if !taken[f.GetName()] {
				fams = append(fams, f)
				taken[f.GetName()] = true
			}
		}
		counter := dto.MetricType_COUNTER
		fams = append(fams, &dto.MetricFamily{Name: proto.String("spoor_metrics_collector_scrape_failures_total"), Type: &counter,
			Help:   proto.String("Scrapes of /metrics that could not read the collector's own metrics endpoint."),
			Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(float64(e.failures.Load()))}}}})
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i].GetName() < fams[j].GetName() })
	return fams
}

// familyNames are the names f's samples take in the text format.
func familyNames(f *dto.MetricFamily) []string {
	n := f.GetName()
	switch f.GetType() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []string{n, n + "_bucket", n + "_sum", n + "_count"}
	case dto.MetricType_SUMMARY:
		return []string{n, n + "_sum", n + "_count"}
	}
	return []string{n}
}

// scrapeCollector reads the collector's own endpoint, in the protobuf format (exact
// values, exemplars kept) when it offers it.
func (e *Extension) scrapeCollector(ctx context.Context) ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ScrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.cfg.CollectorEndpoint+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim))+";q=0.7,text/plain;version=0.0.4;q=0.3")
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	dec := expfmt.NewDecoder(io.LimitReader(resp.Body, maxCollectorBody), expfmt.ResponseFormat(resp.Header))
	var fams []*dto.MetricFamily
	for {
		f := &dto.MetricFamily{}
		if err := dec.Decode(f); err != nil {
			if errors.Is(err, io.EOF) {
				return fams, nil
			}
			return nil, fmt.Errorf("decode %s: %w", req.URL, err)
		}
		fams = append(fams, f)
	}
}

// wholeHistograms returns f with float histogram counts rounded to whole numbers:
// OpenMetrics 1.0 has no float histograms. Rounding keeps cumulative counts
// monotonic, across buckets and across scrapes.
func wholeHistograms(f *dto.MetricFamily) *dto.MetricFamily {
	if t := f.GetType(); t != dto.MetricType_HISTOGRAM && t != dto.MetricType_GAUGE_HISTOGRAM {
		return f
	}
	out := &dto.MetricFamily{Name: f.Name, Help: f.Help, Type: f.Type, Unit: f.Unit, Metric: make([]*dto.Metric, 0, len(f.Metric))}
	for _, m := range f.Metric {
		h := m.GetHistogram()
		if h == nil {
			out.Metric = append(out.Metric, m)
			continue
		}
		count := h.GetSampleCount()
		if h.GetSampleCountFloat() > 0 {
			count = whole(h.GetSampleCountFloat())
		}
		nh := &dto.Histogram{SampleCount: proto.Uint64(count), SampleSum: h.SampleSum, CreatedTimestamp: h.CreatedTimestamp,
			Bucket: make([]*dto.Bucket, 0, len(h.Bucket))}
		for _, b := range h.Bucket {
			c := b.GetCumulativeCount()
			if b.GetCumulativeCountFloat() > 0 {
				c = whole(b.GetCumulativeCountFloat())
			}
			nh.Bucket = append(nh.Bucket, &dto.Bucket{UpperBound: b.UpperBound, CumulativeCount: proto.Uint64(c), Exemplar: b.Exemplar})
		}
		out.Metric = append(out.Metric, &dto.Metric{Label: m.Label, TimestampMs: m.TimestampMs, Histogram: nh})
	}
	return out
}

func whole(v float64) uint64 {
	switch {
	case !(v > 0):
		return 0
	case v >= math.MaxUint64:
		return math.MaxUint64
	}
	return uint64(math.Round(v))
}
