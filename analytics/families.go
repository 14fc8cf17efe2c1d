package analytics

import (
	"encoding/hex"
	"math"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// exemplar is a span a series' sample points at: fixed size, overwritten in place, so
// that keeping it costs no allocation on the ingest path.
type exemplar struct {
	traceID pcommon.TraceID
	spanID  pcommon.SpanID
	value   float64
	at      int64 // unix ns of the batch it came with; 0: none yet
}

func (e *exemplar) set(r *rec, value float64, at int64) {
	e.traceID, e.spanID, e.value, e.at = r.traceID, r.spanID, value, at
}

func (e *exemplar) dto() *dto.Exemplar {
	if e.at == 0 {
		return nil
	}
	return &dto.Exemplar{
		Label: []*dto.LabelPair{
			{Name: proto.String("trace_id"), Value: proto.String(hex.EncodeToString(e.traceID[:]))},
			{Name: proto.String("span_id"), Value: proto.String(hex.EncodeToString(e.spanID[:]))},
		},
		Value:     proto.Float64(e.value),
		Timestamp: timestamppb.New(time.Unix(0, e.at)),
	}
}

// familyServer is what an extension offers that serves Prometheus families with their
// exemplars (spoor_metrics): gather is called on every scrape, from any goroutine, and
// the families it returns win over the collector's own of the same name. The returned
// function withdraws gather.
type familyServer interface {
	RegisterFamilies(gather func() []*dto.MetricFamily) (unregister func())
}

// registerFamilies offers the RED families to every extension that serves them; from
// then on the OTel SDK no longer observes them (see telemetry.go).
func (p *analyticsProcessor) registerFamilies(host component.Host) {
	if host == nil {
		return
	}
	for _, ext := range host.GetExtensions() {
		if fs, ok := ext.(familyServer); ok {
			p.unregister = append(p.unregister, fs.RegisterFamilies(p.families))
		}
	}
	p.exposed.Store(len(p.unregister) > 0)
}

func (p *analyticsProcessor) unregisterFamilies() {
	p.exposed.Store(false)
	for _, u := range p.unregister {
		u()
	}
	p.unregister = nil
}

// seriesSnap is a series' RED state copied out under the lock, so that building the
// families does not hold up ingest.
type seriesSnap struct {
	s              *series
	calls, errors  float64
	buckets        [len(durationBounds) + 1]float64
	sum            float64
	callsEx, errEx exemplar
	bucketEx       [len(durationBounds) + 1]exemplar
}

// families returns spoor_span_calls_total, spoor_span_errors_total and the histogram
// spoor_span_duration_seconds, each sample with its latest exemplar. Counts are
// weighted by adjusted count, so they are floats; histogram bucket counts are given
// as floats too (an OpenMetrics 1.0 encoder must round them: spoor_metrics does).
func (p *analyticsProcessor) families() []*dto.MetricFamily {
	p.mu.Lock()
	snaps := make([]seriesSnap, 0, len(p.series))
	for _, s := range p.series {
		snaps = append(snaps, seriesSnap{s: s, calls: s.calls, errors: s.errors, buckets: s.buckets, sum: s.sum,
			callsEx: s.callsEx, errEx: s.errEx, bucketEx: s.bucketEx})
	}
	p.mu.Unlock()
	sort.Slice(snaps, func(i, j int) bool {
		a, b := snaps[i].s.key, snaps[j].s.key
		if a.svc != b.svc {
			return a.svc < b.svc
		}
		if a.op != b.op {
			return a.op < b.op
		}
		return a.kind < b.kind
	})
	counter, histogram := dto.MetricType_COUNTER, dto.MetricType_HISTOGRAM
	calls := &dto.MetricFamily{Name: proto.String("spoor_span_calls_total"), Type: &counter,
		Help: proto.String(callsHelp), Metric: make([]*dto.Metric, 0, len(snaps))}
	errs := &dto.MetricFamily{Name: proto.String("spoor_span_errors_total"), Type: &counter,
		Help: proto.String(errorsHelp)}
	dur := &dto.MetricFamily{Name: proto.String("spoor_span_duration_seconds"), Type: &histogram,
		Help: proto.String(durationHelp), Metric: make([]*dto.Metric, 0, len(snaps))}
	for i := range snaps {
		sn := &snaps[i]
		labels := sn.s.promLabels
		calls.Metric = append(calls.Metric, &dto.Metric{Label: labels,
			Counter: &dto.Counter{Value: proto.Float64(sn.calls), Exemplar: sn.callsEx.dto()}})
		if sn.errors > 0 {
			errs.Metric = append(errs.Metric, &dto.Metric{Label: labels,
				Counter: &dto.Counter{Value: proto.Float64(sn.errors), Exemplar: sn.errEx.dto()}})
		}
		h := &dto.Histogram{SampleSum: proto.Float64(sn.sum), Bucket: make([]*dto.Bucket, 0, len(sn.buckets))}
		var cum float64
		for b, c := range sn.buckets {
			cum += c
			ub := math.Inf(1)
			if b < len(durationBounds) {
				ub = durationBounds[b]
			}
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(ub), CumulativeCountFloat: proto.Float64(cum),
				Exemplar: sn.bucketEx[b].dto()})
		}
		h.SampleCountFloat = proto.Float64(cum)
		dur.Metric = append(dur.Metric, &dto.Metric{Label: labels, Histogram: h})
	}
	out := []*dto.MetricFamily{calls, dur}
	if len(errs.Metric) > 0 {
		out = append(out, errs)
	}
	return out
}

// promLabels are a series' labels as the Prometheus families carry them, built once.
func promLabels(k seriesKey) []*dto.LabelPair {
	return []*dto.LabelPair{
		{Name: proto.String("service_name"), Value: proto.String(k.svc)},
		{Name: proto.String("span_kind"), Value: proto.String(spanKindName(k.kind))},
		{Name: proto.String("span_name"), Value: proto.String(k.op)},
	}
}
