package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"
)

// TestMutualTLS: with SPOOR_TLS_CLIENT_CA_FILE, the receivers and the query API take
// only clients whose certificate that CA signed. The OTel SDK's OTLP gRPC and HTTP
// exporters and zipkin-go, each with such a certificate, send spans that are stored and
// read back in full; without a client certificate, or with one another CA signed, the
// TLS handshake fails on every listener, the SDK's exports fail and nothing they sent
// is stored, and the query API cannot be read.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA := newTestCA(t, "spoor server CA")
	certFile, keyFile, _ := serverCA.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	clientCA := newTestCA(t, "spoor clients CA")
	clientCAFile := filepath.Join(dir, "clients-ca.pem")
	if err := os.WriteFile(clientCAFile, clientCA.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, good := clientCA.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	_, _, rogue := newTestCA(t, "rogue CA").issue(t, dir, "rogue", x509.ExtKeyUsageClientAuth)

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(serverCA.pem) {
		t.Fatal("bad CA PEM")
	}
	// Every client trusts spoor's server certificate; they differ in what they present.
	tlsWith := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12}
	}
	httpWith := func(cfg *tls.Config) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	}
	// Go's client sends only a certificate the server's CA list names; a client that
	// presents its certificate whatever the server asks for tests the verification.
	rogueCfg := tlsWith()
	rogueCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogue, nil }
	client := httpWith(tlsWith(good))
	ep := freeEndpoints(t)
	s := startSpoorProbe(t, ep, t.TempDir(), nil, client, "https://"+ep.Query+"/healthz",
		"SPOOR_TLS_CERT_FILE="+certFile, "SPOOR_TLS_KEY_FILE="+keyFile, "SPOOR_TLS_CLIENT_CA_FILE="+clientCAFile)

	// With the client certificate: real SDK exporters, every receiver, read back in full.
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	sent := []sentTrace{
		sendOTLP(t, "otlp-grpc-mtls", base, func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(ep.OTLPGRPC),
				otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsWith(good))))
		}),
		sendOTLP(t, "otlp-http-mtls", base, func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(ep.OTLPHTTP), otlptracehttp.WithTLSClientConfig(tlsWith(good)))
		}),
		sendZipkinGo(t, "https://"+ep.Zipkin, base, "zipkin-go-mtls", "rt-zipkin-mtls", zipkinhttp.Client(client)),
	}
	for _, st := range sent {
		tr, ok := traceWith(t, client, ep.Query, st.traceID, 10*time.Second)
		if !ok {
			t.Errorf("%s: trace %s sent with a client certificate not found", st.name, st.traceID)
			continue
		}
		t.Run(st.name, func(t *testing.T) { st.check(t, tr) })
	}

	// Without a client certificate, or with a certificate of another CA, no listener
	// completes a handshake. With the right one, the same probe gets through (the
	// server then waits for a request, or speaks HTTP/2 first on the gRPC port).
	listeners := map[string]string{"otlp grpc": ep.OTLPGRPC, "otlp http": ep.OTLPHTTP, "zipkin": ep.Zipkin, "query": ep.Query}
	for name, addr := range listeners {
		if err := tlsProbe(addr, tlsWith(good)); err != nil {
			t.Errorf("%s: handshake with a client certificate: %v", name, err)
		}
		for cname, cfg := range map[string]*tls.Config{"no client certificate": tlsWith(), "another CA's certificate": rogueCfg} {
			err := tlsProbe(addr, cfg)
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("%s: handshake with %s: %v, want a TLS alert refusing the certificate", name, cname, err)
			} else {
				t.Logf("%s, %s: %v", name, cname, err)
			}
		}
	}

	// The SDK's exporters without a client certificate: the export fails, nothing stored.
	res := resource.NewSchemaless(attribute.String("service.name", "mtls-refused"))
	refusedSpans := func(b byte) (tracetest.SpanStubs, string) {
		tid := trace.TraceID{0x7e, b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, b}
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, b}, TraceFlags: trace.FlagsSampled})
		return tracetest.SpanStubs{{Name: "refused", SpanContext: sc, StartTime: base, EndTime: base.Add(time.Millisecond), Resource: res}}, tid.String()
	}
	var refused []string
	for i, cfg := range []*tls.Config{tlsWith(), rogueCfg} {
		ctx := ctxTimeout(t, 20*time.Second)
		grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(ep.OTLPGRPC),
			otlptracegrpc.WithTLSCredentials(credentials.NewTLS(cfg)), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		if err != nil {
			t.Fatal(err)
		}
		httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(ep.OTLPHTTP),
			otlptracehttp.WithTLSClientConfig(cfg), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		if err != nil {
			t.Fatal(err)
		}
		for j, exp := range []*otlptrace.Exporter{grpcExp, httpExp} {
			spans, tid := refusedSpans(byte(10*i + j))
			refused = append(refused, tid)
			if err := exp.ExportSpans(ctx, spans.Snapshots()); err == nil {
				t.Errorf("OTLP export %d/%d without a trusted client certificate succeeded", i, j)
			}
			_ = exp.Shutdown(ctx)
		}
		// Zipkin and the query API with a plain HTTP client.
		plain := httpWith(cfg)
		zipkinTrace := "7e" + strconv.Itoa(20+i) + "0102030405060708090a0b0c0d0e"
		refused = append(refused, zipkinTrace)
		body := `[{"traceId":"` + zipkinTrace + `","id":"0102030405060799","name":"z","timestamp":` +
			strconv.FormatInt(base.UnixMicro(), 10) + `,"duration":5,"localEndpoint":{"serviceName":"mtls-refused"}}]`
		if resp, err := plain.Post("https://"+ep.Zipkin+"/api/v2/spans", "application/json", bytes.NewReader([]byte(body))); err == nil {
			resp.Body.Close()
			t.Errorf("Zipkin POST without a trusted client certificate: %d, want a failed handshake", resp.StatusCode)
		}
		if resp, err := plain.Get("https://" + ep.Query + "/api/traces/" + sent[0].traceID); err == nil {
			resp.Body.Close()
			t.Errorf("query API without a trusted client certificate: %d, want a failed handshake", resp.StatusCode)
		}
		plain.CloseIdleConnections()
	}
	for _, tid := range refused {
		if _, ok := traceWith(t, client, ep.Query, tid, 0); ok {
			t.Errorf("trace %s, sent without a trusted client certificate, was stored", tid)
		}
	}
	var services jaegerEnvelope[[]string]
	if code := getJSONWith(t, client, "https://"+ep.Query+"/api/services", &services); code != http.StatusOK || contains(services.Data, "mtls-refused") {
		t.Errorf("/api/services: %d %v, want 200 without mtls-refused", code, services.Data)
	}
	s.alive()
}

// traceWith reads a trace through the Jaeger API with client, waiting up to wait.
func traceWith(t *testing.T, client *http.Client, queryAddr, traceID string, wait time.Duration) (jaegerTrace, bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		var env jaegerEnvelope[[]jaegerTrace]
		if code := getJSONWith(t, client, "https://"+queryAddr+"/api/traces/"+traceID, &env); code == http.StatusOK && len(env.Data) == 1 {
			return env.Data[0], true
		}
		if time.Now().After(deadline) {
			return jaegerTrace{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tlsProbe connects to addr, completes the client's side of the handshake and reads
// once: a server that refuses the client's certificate answers with a TLS alert (in
// TLS 1.3 the client learns of it on its first read). A read that times out or
// returns data means the server accepted the client.
func tlsProbe(addr string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"} // gRPC servers close connections that do not offer it
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if strings.Contains(err.Error(), "tls:") {
		return err
	}
	return errors.New("connection closed without a TLS alert: " + err.Error())
}
