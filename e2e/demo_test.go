package e2e

import (
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `spoor demo` against a running Spoor and checks that its payment flows
// arrive as traces crossing at least five services and both protocols.
func TestDemo(t *testing.T) {
	t.Parallel()
	s := startSpoor(t, t.TempDir())
	cmd := exec.Command(spoorBin, "demo", "--rate", "20", "--duration", "4s")
	cmd.Env = append(cmd.Environ(), s.ep.env(s.dataDir)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("spoor demo: %v\n%s", err, out)
	}

	var traces jaegerEnvelope[[]jaegerTrace]
	q := url.Values{"service": {"api-gateway"}, "limit": {"200"},
		"start": {strconv.FormatInt(time.Now().Add(-time.Hour).UnixMicro(), 10)}}
	if code := s.getJSON("/api/traces?"+q.Encode(), &traces); code != 200 {
		t.Fatalf("search demo traces: status %d", code)
	}
	if len(traces.Data) < 20 {
		t.Fatalf("found %d demo traces, want at least 20 (4s at 20/s)", len(traces.Data))
	}
	best, bestServices, crossProtocol, errorTraces := 0, []string(nil), 0, 0
	for _, tr := range traces.Data {
		services := map[string]bool{}
		viaOTLP, viaZipkin := false, false
		for _, p := range tr.Processes {
			services[p.ServiceName] = true
			// The OTel SDK always describes itself in the resource; zipkin-go never does.
			if _, ok := tag(p.Tags, "telemetry.sdk.language"); ok {
				viaOTLP = true
			} else {
				viaZipkin = true
			}
		}
		if viaOTLP && viaZipkin {
			crossProtocol++
		}
		if len(services) > best {
			best = len(services)
			bestServices = bestServices[:0]
			for s := range services {
				bestServices = append(bestServices, s)
			}
		}
		for _, sp := range tr.Spans {
			if v, ok := tag(sp.Tags, "error"); ok && v == true {
				errorTraces++
				break
			}
		}
	}
	if best < 5 {
		t.Errorf("the widest demo trace crosses %d services (%v), want at least 5", best, bestServices)
	}
	if crossProtocol == 0 {
		t.Errorf("no demo trace holds spans from both the OTel SDK (OTLP) and zipkin-go (Zipkin)")
	}
	if errorTraces == 0 {
		t.Errorf("no demo trace has an error span; the demo must show failures")
	}

	m := s.metrics()
	for _, receiver := range []string{"otlp", "zipkin"} {
		if n := acceptedSpans(m, receiver); n == 0 {
			t.Errorf("/metrics shows no spans accepted by receiver %q", receiver)
		}
	}
}

// acceptedSpans sums otelcol_receiver_accepted_spans for one receiver type.
func acceptedSpans(metrics, receiver string) float64 {
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^otelcol_receiver_accepted_spans(?:_total)?\{[^}]*receiver="%s(?:/[^"]*)?"[^}]*\} ([0-9.e+]+)$`, regexp.QuoteMeta(receiver)))
	total := 0.0
	for _, m := range re.FindAllStringSubmatch(metrics, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

// TestCommands checks the collector sub-commands every distribution has.
func TestCommands(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(spoorBin, "components").CombinedOutput()
	if err != nil {
		t.Fatalf("spoor components: %v\n%s", err, out)
	}
	for _, want := range []string{"otlp", "zipkin", "spoor_storage", "spoor_query"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("spoor components does not list %s:\n%s", want, out)
		}
	}
	out, err = exec.Command(spoorBin, "validate").CombinedOutput()
	if err != nil {
		t.Errorf("spoor validate (embedded default config): %v\n%s", err, out)
	}
	bad := t.TempDir() + "/bad.yaml"
	if err := writeFile(bad, "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0\nexporters:\n  spoor_storage:\n    storage: spoor_storage\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nope]\n"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(spoorBin, "validate", "--config", bad).CombinedOutput(); err == nil {
		t.Errorf("spoor validate accepted a config whose pipeline names a missing exporter:\n%s", out)
	}
}
