package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoortrace/spoor/storage"
)

func hist(ds ...time.Duration) storage.Histogram {
	var h storage.Histogram
	for _, d := range ds {
		h.Add(d, 1)
	}
	return h
}

func writeRollups(t *testing.T, e *testEnv, b storage.RollupBatch) {
	t.Helper()
	if err := e.store.WriteRollups(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestSpoorRED(t *testing.T) {
	e := newTestEnv(t, Options{})
	m := envNow.Truncate(time.Minute).Add(-10 * time.Minute)
	writeRollups(t, e, storage.RollupBatch{RED: []storage.REDRollup{
		{Minute: m, Service: "payment-service", Operation: "charge", Kind: 1, Calls: 8, Errors: 2,
			Duration: hist(time.Millisecond, time.Millisecond, time.Millisecond, 100*time.Millisecond)},
		{Minute: m.Add(time.Minute), Service: "payment-service", Operation: "charge", Kind: 1, Calls: 2, Errors: 0, Duration: hist(time.Millisecond)},
		{Minute: m, Service: "orders", Operation: "POST /orders", Kind: 2, Calls: 1},
		{Minute: m.Add(-3 * time.Hour), Service: "payment-service", Operation: "charge", Kind: 1, Calls: 100},
	}})
	status, body := e.get("/spoor/api/v1/red?service=payment-service")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var got struct {
		Series []struct {
			Service, Operation, SpanKind string
			Calls, Errors, ErrorRate     float64
			P50Ms                        float64 `json:"p50Ms"`
			P99Ms                        float64 `json:"p99Ms"`
			Points                       []struct {
				Minute time.Time
				Calls  float64
			}
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Series) != 1 {
		t.Fatalf("series = %+v, want payment-service's only (the 3h-old minute is outside the default hour)", got.Series)
	}
	s := got.Series[0]
	if s.Operation != "charge" || s.SpanKind != "internal" || s.Calls != 10 || s.Errors != 2 || s.ErrorRate != 0.2 || len(s.Points) != 2 {
		t.Errorf("series = %+v", s)
	}
	if s.P50Ms < 0.9 || s.P50Ms > 1.2 || s.P99Ms < 80 || s.P99Ms > 120 {
		t.Errorf("p50 %v ms p99 %v ms, want about 1 and 100", s.P50Ms, s.P99Ms)
	}
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	status, body = e.get("/spoor/api/v1/red?start=" + ms(m.Add(-4*time.Hour)) + "&end=" + m.Add(30*time.Second).Format(time.RFC3339))
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil || len(got.Series) != 2 || got.Series[1].Calls != 108 {
		t.Errorf("explicit range: %d %s", status, body)
	}
	for _, bad := range []string{"?start=yesterday", "?start=2000&end=1000", "?spanKind=weird", "?start=0&end=" + ms(envNow)} {
		status, body := e.get("/spoor/api/v1/red" + bad)
		expectSpoorError(t, bad, status, body, http.StatusBadRequest)
	}
}

func TestSpoorGraphAndDependenciesFromRollups(t *testing.T) {
	e := newTestEnv(t, Options{})
	// Without rollups /api/dependencies answers from the store's own counts (none).
	if status, body := e.get("/api/dependencies"); status != http.StatusOK || string(body) != `{"data":[],"total":0,"limit":0,"offset":0,"errors":null}` {
		t.Fatalf("no rollups: %d %s", status, body)
	}
	m := envNow.Truncate(time.Minute).Add(-10 * time.Minute)
	writeRollups(t, e, storage.RollupBatch{Edges: []storage.EdgeRollup{
		{Minute: m, Parent: "orders", Child: "payment-service", Kind: storage.EdgeRequest, Calls: 3.4, Errors: 1, Latency: hist(time.Millisecond)},
		{Minute: m.Add(time.Minute), Parent: "orders", Child: "payment-service", Kind: storage.EdgeRequest, Calls: 1},
		{Minute: m, Parent: "payment-service", Child: "stripe", Kind: storage.EdgePeer, Calls: 2, Errors: 2},
		{Minute: m, Parent: "payment-service", Child: "ledger", Kind: storage.EdgeMessaging, Calls: 1},
	}})
	status, body := e.get("/spoor/api/v1/graph")
	var g struct {
		Nodes []struct {
			Name         string
			Instrumented bool
		}
		Edges []struct {
			Parent, Child, Kind string
			Calls, Errors       float64
		}
	}
	if err := json.Unmarshal(body, &g); status != http.StatusOK || err != nil {
		t.Fatalf("%d %s", status, body)
	}
	if len(g.Edges) != 3 || g.Edges[0].Calls != 4.4 || g.Edges[2].Kind != "peer" || g.Edges[1].Kind != "messaging" {
		t.Errorf("edges = %+v", g.Edges)
	}
	if len(g.Nodes) != 4 || g.Nodes[3].Name != "stripe" || g.Nodes[3].Instrumented || !g.Nodes[2].Instrumented {
		t.Errorf("nodes = %+v", g.Nodes)
	}
	// Jaeger's shape, counts rounded, from the rollups.
	want := `{"data":[{"parent":"orders","child":"payment-service","callCount":4},{"parent":"payment-service","child":"ledger","callCount":1},{"parent":"payment-service","child":"stripe","callCount":2}],"total":0,"limit":0,"offset":0,"errors":null}`
	if status, body := e.get("/api/dependencies"); status != http.StatusOK || string(body) != want {
		t.Errorf("dependencies: %d %s\nwant %s", status, body, want)
	}
	// Zipkin's answer comes from the same edges, with error counts where there are any.
	status, body = e.get("/api/v2/dependencies?endTs=" + strconv.FormatInt(envNow.UnixMilli(), 10) + "&lookback=86400000")
	var links []struct {
		Parent     string `json:"parent"`
		Child      string `json:"child"`
		CallCount  uint64 `json:"callCount"`
		ErrorCount uint64 `json:"errorCount"`
	}
	if err := json.Unmarshal(body, &links); status != http.StatusOK || err != nil || len(links) != 3 ||
		links[0].Parent != "orders" || links[0].CallCount != 4 || links[2].Child != "stripe" || links[2].CallCount != 2 {
		t.Errorf("Zipkin dependencies: %d %s", status, body)
	}
}

func TestSpoorAlerts(t *testing.T) {
	e := newTestEnv(t, Options{})
	if status, body := e.get("/spoor/api/v1/alerts"); status != http.StatusOK || string(body) != `{"rules":[],"firings":[]}` {
		t.Fatalf("no state: %d %s", status, body)
	}
	doc := `{"rules":[{"alert":"A","state":"firing"}],"firings":[]}`
	if err := e.store.PutAlertState(context.Background(), []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if status, body := e.get("/spoor/api/v1/alerts"); status != http.StatusOK || string(body) != doc {
		t.Fatalf("state: %d %s", status, body)
	}
}

// TestSpoorOpenAPI: the document is served, and it describes exactly the routes under
// /spoor/api/v1.
func TestSpoorOpenAPI(t *testing.T) {
	e := newTestEnv(t, Options{})
	status, body := e.get("/spoor/api/v1/openapi.json")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); status != http.StatusOK || err != nil || doc.OpenAPI == "" {
		t.Fatalf("%d %v %.200s", status, err, body)
	}
	routes := map[string]bool{}
	for _, r := range e.api.e.Routes() {
		if strings.HasPrefix(r.Path, "/spoor/") {
			path := strings.ReplaceAll(r.Path, ":traceID", "{traceId}")
			routes[path] = true
			if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
				t.Errorf("route %s %s is not in the OpenAPI document", r.Method, path)
			}
		}
	}
	for p := range doc.Paths {
		if !routes[p] {
			t.Errorf("the OpenAPI document describes %s, which is not served", p)
		}
	}
}

// expectSpoorError checks a Spoor API error: the status and {"error":{"status","message"}}.
func expectSpoorError(t *testing.T, what string, status int, body []byte, wantStatus int) {
	t.Helper()
	var e struct {
		Error struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || status != wantStatus || e.Error.Status != wantStatus || e.Error.Message == "" {
		t.Errorf("%s: %d %s, want %d in the Spoor error shape", what, status, body, wantStatus)
	}
}

// TestSpoorREDServices: one row per service over the calls it answered (SERVER and
// CONSUMER spans; all spans when it has none), percentiles from the merged histogram —
// not the slowest operation's.
func TestSpoorREDServices(t *testing.T) {
	e := newTestEnv(t, Options{})
	m := envNow.Truncate(time.Minute).Add(-10 * time.Minute)
	ms := func(n int, d time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = d
		}
		return out
	}
	writeRollups(t, e, storage.RollupBatch{RED: []storage.REDRollup{
		{Minute: m, Service: "api", Operation: "GET /fast", Kind: 2, Calls: 98, Errors: 1, Duration: hist(ms(98, time.Millisecond)...)},
		{Minute: m, Service: "api", Operation: "GET /slow", Kind: 2, Calls: 2, Errors: 1, Duration: hist(ms(2, 100*time.Millisecond)...)},
		{Minute: m, Service: "api", Operation: "db query", Kind: 3, Calls: 10, Duration: hist(ms(10, 500*time.Millisecond)...)},
		{Minute: m, Service: "worker", Operation: "tick", Kind: 1, Calls: 4, Duration: hist(ms(4, 7*time.Millisecond)...)},
	}})
	status, body := e.get("/spoor/api/v1/red")
	var got struct {
		Services []struct {
			Service                  string
			SpanKinds                []string
			Calls, Errors, ErrorRate float64
			P50Ms                    float64 `json:"p50Ms"`
			P99Ms                    float64 `json:"p99Ms"`
		}
	}
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil || len(got.Services) != 2 {
		t.Fatalf("%d %v %s", status, err, body)
	}
	api, worker := got.Services[0], got.Services[1]
	if api.Service != "api" || fmt.Sprint(api.SpanKinds) != "[server]" || api.Calls != 100 || api.Errors != 2 || api.ErrorRate != 0.02 {
		t.Errorf("api row = %+v, want its 100 server calls only", api)
	}
	if api.P50Ms < 0.9 || api.P50Ms > 1.2 || api.P99Ms < 80 || api.P99Ms > 120 {
		t.Errorf("api p50 %v ms p99 %v ms, want about 1 (the merged histogram) and 100", api.P50Ms, api.P99Ms)
	}
	if worker.Service != "worker" || fmt.Sprint(worker.SpanKinds) != "[internal]" || worker.Calls != 4 || worker.P50Ms < 6 || worker.P50Ms > 8 {
		t.Errorf("worker row = %+v, want its internal spans (it answers no calls)", worker)
	}
}
