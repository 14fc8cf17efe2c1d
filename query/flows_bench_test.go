package query

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage/badgerstore"
)

// BenchmarkFlowFold is the server-side folding alone, per trace of checkoutFlow's shape
// (7–8 spans, 5 hops).
func BenchmarkFlowFold(b *testing.B) {
	traces := make([]ptrace.Traces, 500)
	for i := range traces {
		traces[i] = checkoutFlow(i % 200)
	}
	b.ReportAllocs()
	for b.Loop() {
		f := newFlowFold("gateway", "POST /checkout")
		for i, td := range traces {
			f.add(pcommon.TraceID{9, byte(i)}, td)
		}
		_ = f.export(flowQuery{service: "gateway", operation: "POST /checkout", limit: len(traces)})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(traces)), "ns/trace")
}

// BenchmarkFlowsHTTP is GET /spoor/api/v1/flows over 500 traces of a Badger store holding
// 2,000, through HTTP with JSON encoding.
func BenchmarkFlowsHTTP(b *testing.B) {
	store, err := badgerstore.Open(b.TempDir(), badgerstore.Options{NoSyncWrites: true, Retention: fixtureRetention})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	for i := range 2000 {
		td := checkoutFlow(i % 200)
		// IDs differ in their low half, as random IDs do: the store keys traces by it.
		setTraceID(td, pcommon.TraceID{0: 9, 8: 9, 14: byte(i >> 8), 15: byte(i)}, time.Duration(i)*time.Second)
		if err := store.WriteTraces(context.Background(), td); err != nil {
			b.Fatal(err)
		}
	}
	api := New(store, Options{})
	api.now = func() time.Time { return zipkinBase.Add(time.Minute) }
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	url := srv.URL + "/spoor/api/v1/flows?service=gateway&operation=POST+/checkout&limit=500&start=" + strconv.FormatInt(zipkinBase.Add(-24*time.Hour).UnixMilli(), 10)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"tracesExamined":500`)) {
			b.Fatalf("%s %.200s", resp.Status, body)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// setTraceID gives every span of td the trace ID id and moves it back by shift.
func setTraceID(td ptrace.Traces, id pcommon.TraceID, shift time.Duration) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				sp.SetTraceID(id)
				sp.SetStartTimestamp(sp.StartTimestamp() - pcommon.Timestamp(shift))
				sp.SetEndTimestamp(sp.EndTimestamp() - pcommon.Timestamp(shift))
			}
		}
	}
}
