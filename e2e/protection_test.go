package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TestQueryAuthToken: with SPOOR_QUERY_AUTH_TOKEN set, nothing of the query API or the
// UI is readable without the token — 401 for no credentials, a wrong token or a wrong
// scheme — while /healthz stays open; the bearer token and the login form's cookie
// both open it.
func TestQueryAuthToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-t0ken"
	s := startSpoor(t, t.TempDir(), "SPOOR_QUERY_AUTH_TOKEN="+token)
	td, tid := goodTraces(7)
	if code, body := post(t, "http://"+s.ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", "", protoBody(t, td)); code != http.StatusOK {
		t.Fatalf("ingest: %d %s", code, body)
	}
	base := "http://" + s.ep.Query
	paths := []string{"/api/services", "/api/traces/" + tid.String(), "/api/traces?service=bad-input-test",
		"/api/operations?service=bad-input-test", "/api/dependencies", "/", "/index.html", "/api/unknown",
		"/spoor/api/v1/openapi.json", "/api/v2/services", "/api/v3/services"}
	get := func(path, authz string, cookie *http.Cookie) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, p := range paths {
		for _, authz := range []string{"", "Bearer wrong", "Basic " + token, "Bearer " + token + "x", "Bearer"} {
			code, body, h := get(p, authz, nil)
			if code != http.StatusUnauthorized || strings.Contains(body, "bad-input-test") || strings.Contains(body, tid.String()) {
				t.Errorf("GET %s with Authorization %q: %d %q, want 401 revealing nothing", p, authz, code, truncate(body, 200))
			}
			if h.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s: 401 without WWW-Authenticate", p)
			}
		}
		if code, _, _ := get(p, "", &http.Cookie{Name: "spoor_token", Value: "wrong"}); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong cookie: %d, want 401", p, code)
		}
	}
	if code, _, _ := get("/healthz", "", nil); code != http.StatusOK {
		t.Errorf("/healthz without credentials: %d, want 200", code)
	}
	code, body, _ := get("/api/services", "Bearer "+token, nil)
	if code != http.StatusOK || !strings.Contains(body, "bad-input-test") {
		t.Errorf("GET /api/services with the token: %d %q", code, body)
	}
	if code, _, _ := get("/api/traces/"+tid.String(), "bearer "+token, nil); code != http.StatusOK {
		t.Errorf("GET trace with the token: %d", code)
	}

	// The login form: a wrong token is refused, the right one sets the cookie, and the
	// cookie opens the UI and the API.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(base+"/login", url.Values{"token": {"nope"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d, want 401", resp.StatusCode)
	}
	resp, err = browser.PostForm(base+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("login, then the UI: %d, want 200", resp.StatusCode)
	}
	resp, err = browser.Get(base + "/api/services")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("bad-input-test")) {
		t.Errorf("API with the login cookie: %d %q", resp.StatusCode, b)
	}
}

// TestTLS: with SPOOR_TLS_CERT_FILE and SPOOR_TLS_KEY_FILE, the query API and every
// receiver serve TLS; a client that trusts the test's CA sends spans over OTLP gRPC,
// OTLP HTTP and Zipkin and reads them back, while plaintext and untrusting clients fail.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caPEM, certFile, keyFile := writeTestCerts(t, dir)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("bad CA PEM")
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 10 * time.Second}
	ep := freeEndpoints(t)
	s := startSpoorProbe(t, ep, t.TempDir(), nil, client, "https://"+ep.Query+"/healthz",
		"SPOOR_TLS_CERT_FILE="+certFile, "SPOOR_TLS_KEY_FILE="+keyFile)

	// OTLP gRPC over TLS.
	conn, err := grpc.NewClient(ep.OTLPGRPC, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tdG, tidG := goodTraces(21)
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctxTimeout(t, 10*time.Second), ptraceotlp.NewExportRequestFromTraces(tdG)); err != nil {
		t.Fatalf("OTLP gRPC export over TLS: %v", err)
	}
	// OTLP HTTP and Zipkin over TLS.
	tdH, tidH := goodTraces(22)
	mustPost(t, client, "https://"+ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", protoBody(t, tdH), http.StatusOK)
	zipkinTrace := "0102030405060708090a0b0c0d0e0f23"
	mustPost(t, client, "https://"+ep.Zipkin+"/api/v2/spans", "application/json",
		[]byte(`[{"traceId":"`+zipkinTrace+`","id":"0102030405060723","name":"z","timestamp":`+
			strconv.FormatInt(time.Now().UnixMicro(), 10)+`,"duration":5,"localEndpoint":{"serviceName":"tls-zipkin"}}]`),
		http.StatusAccepted)

	for _, id := range []string{tidG.String(), tidH.String(), zipkinTrace} {
		var env jaegerEnvelope[[]jaegerTrace]
		if code := getJSONWith(t, client, "https://"+ep.Query+"/api/traces/"+id, &env); code != http.StatusOK || len(env.Data) != 1 {
			t.Errorf("GET trace %s over TLS: %d", id, code)
		}
	}

	// Plaintext and clients without the CA get nothing.
	if resp, err := http.Get("http://" + ep.Query + "/api/services"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plaintext GET on the TLS query endpoint answered 200: %q", b)
		}
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + ep.Query + "/api/services"); err == nil {
		t.Error("a client that does not trust the CA read the query API")
	}
	if resp, err := http.Post("http://"+ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(protoBody(t, tdH))); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plaintext OTLP HTTP accepted on the TLS receiver")
		}
	}
	s.alive()
}

func mustPost(t *testing.T, c *http.Client, url, ctype string, body []byte, want int) {
	t.Helper()
	resp, err := c.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %q, want %d", url, resp.StatusCode, b, want)
	}
}

// writeTestCerts makes a CA and a server certificate for 127.0.0.1 and localhost,
// writes the server's cert and key into dir, and returns the CA in PEM.
func writeTestCerts(t *testing.T, dir string) (caPEM []byte, certFile, keyFile string) {
	t.Helper()
	ca := newTestCA(t, "spoor test CA")
	certFile, keyFile, _ = ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	return ca.pem, certFile, keyFile
}

// testCA is a certificate authority made by a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a certificate for 127.0.0.1 and localhost with the given use (server or
// client), writes it and its key into dir as name.crt and name.key, and returns the
// files and the pair.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}
