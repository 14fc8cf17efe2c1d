package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/spoortrace/spoor/storage/storagetest"
)

// startSpoorWithJaegerFixtures starts spoor on a fresh data directory and sends it
// every Jaeger fixture trace over OTLP/HTTP.
func startSpoorWithJaegerFixtures(t *testing.T) (*storagetest.JaegerFixtures, *spoor) {
	t.Helper()
	fx := storagetest.LoadJaegerFixtures(t)
	s := startSpoor(t, t.TempDir())
	for name, td := range fx.Traces {
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		if status, msg := post(t, "http://"+s.ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", "", body); status != http.StatusOK {
			t.Fatalf("send fixture %s: %d %s", name, status, msg)
		}
	}
	return fx, s
}

// TestJaegerConformanceThroughAPI runs Jaeger's storage conformance cases end to end:
// every fixture trace sent to the built binary over OTLP/HTTP, every query asked
// through the Jaeger-compatible /api/traces as Jaeger UI and Grafana ask it.
func TestJaegerConformanceThroughAPI(t *testing.T) {
	t.Parallel()
	fx, s := startSpoorWithJaegerFixtures(t)
	for _, c := range fx.Cases {
		t.Run(c.Caption, func(t *testing.T) {
			q := c.Query
			v := url.Values{}
			v.Set("service", q.ServiceName)
			if q.OperationName != "" {
				v.Set("operation", q.OperationName)
			}
			if len(q.Attributes) > 0 {
				tags, err := json.Marshal(q.Attributes)
				if err != nil {
					t.Fatal(err)
				}
				v.Set("tags", string(tags))
			}
			v.Set("start", strconv.FormatInt(q.StartTimeMin.UnixMicro(), 10))
			v.Set("end", strconv.FormatInt(q.StartTimeMax.UnixMicro(), 10))
			if q.DurationMin > 0 {
				v.Set("minDuration", q.DurationMin.String())
			}
			if q.DurationMax > 0 {
				v.Set("maxDuration", q.DurationMax.String())
			}
			v.Set("limit", strconv.Itoa(q.Limit))
			v.Set("lookback", "custom") // sent by Grafana, ignored by the server
			var env jaegerEnvelope[[]jaegerTrace]
			if code := s.getJSON("/api/traces?"+v.Encode(), &env); code != http.StatusOK {
				t.Fatalf("GET /api/traces?%s = %d", v.Encode(), code)
			}
			var got []string
			for _, tr := range env.Data {
				got = append(got, padTraceID(tr.TraceID))
			}
			slices.Sort(got)
			want := slices.Clone(c.Want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("GET /api/traces?%s\n got %v\nwant %v", v.Encode(), got, want)
			}
		})
	}
}
