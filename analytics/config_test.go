package analytics

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/zipkin/zipkinv2"
	"go.opentelemetry.io/collector/confmap"

	"github.com/spoortrace/spoor/storage"
)

// TestRulesInCollectorConfig: rules can live in the processor's config, in the same
// form as the file; a bad one fails Validate with its position and reason.
func TestRulesInCollectorConfig(t *testing.T) {
	cfg := createDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{
		"storage": "spoor_storage",
		"alerts": map[string]any{
			"webhook": "http://127.0.0.1:9093/api/v2/alerts",
			"groups": []any{map[string]any{"name": "payments", "rules": []any{map[string]any{
				"alert": "CardDeclinesHigh",
				"match": map[string]any{"service": "payment-service", "operation": "charge",
					"attributes": map[string]any{"payment.method": "card"}},
				"condition":   "error_rate > 0.05",
				"window":      "1m",
				"for":         "0s",
				"labels":      map[string]any{"severity": "page"},
				"annotations": map[string]any{"summary": "More than 5% of card charges fail"},
			}}}},
		},
	}).Unmarshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rules, err := cfg.Alerts.Rules()
	if err != nil || len(rules) != 1 || rules[0].Name != "CardDeclinesHigh" || rules[0].Labels["severity"] != "page" {
		t.Fatalf("rules %+v, %v", rules, err)
	}
	cfg.Alerts.Groups[0].Rules[0].Window = "forever"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "alerts.groups[0] (payments) rule 0 (CardDeclinesHigh)") ||
		!strings.Contains(err.Error(), "window") {
		t.Fatalf("Validate = %v", err)
	}
}

// TestZipkinRemoteEndpointIsAPeer: a Zipkin client span's remoteEndpoint, as the
// contrib Zipkin receiver translates it (service.peer.name with the v0.162 defaults),
// names the uninstrumented peer of a service graph edge.
func TestZipkinRemoteEndpointIsAPeer(t *testing.T) {
	body := `[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"00f067aa0ba902b7","kind":"CLIENT","name":"hgetall",
	"timestamp":` + strconv.FormatInt(time.Now().UnixMicro(), 10) + `,"duration":800,"localEndpoint":{"serviceName":"fraud-service"},
	"remoteEndpoint":{"serviceName":"redis","ipv4":"10.42.2.61","port":6379},"tags":{"error":"connection refused"}}]`
	td, err := zipkinv2.NewJSONTracesUnmarshaler(false).UnmarshalTraces([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if got := peerName(sp.Attributes()); got != "redis" {
		t.Fatalf("peer of the Zipkin span = %q (attributes %v)", got, sp.Attributes().AsRaw())
	}
	r := newRig(t, t.TempDir(), nil)
	if err := r.proc.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	r.stop(t)
	edges, err := r.store.ReadEdges(context.Background(), storage.RollupQuery{Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(edges) != 1 || edges[0].Parent != "fraud-service" || edges[0].Child != "redis" || edges[0].Kind != storage.EdgePeer ||
		edges[0].Errors != 1 {
		t.Fatalf("edges = %+v", edges)
	}
}
