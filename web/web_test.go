package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const indexHTML = `<!doctype html><title>Spoor</title><div id="app"></div>`

// builtFS is what `make ui` leaves in dist/ui, plus the placeholder.
func builtFS(t *testing.T) fstest.MapFS {
	js := strings.Repeat("console.log('spoor');", 50)
	return fstest.MapFS{
		"dist/README.md":                 {Data: []byte("readme")},
		"dist/ui/index.html":             {Data: []byte(indexHTML)},
		"dist/ui/index.html.gz":          {Data: gz(t, indexHTML)},
		"dist/ui/assets/index-abc.js":    {Data: []byte(js)},
		"dist/ui/assets/index-abc.js.gz": {Data: gz(t, js)},
		"dist/ui/assets/index-abc.css":   {Data: []byte("body{}")},
		"placeholder/index.html":         {Data: []byte("placeholder /api/services")},
	}
}

func TestPlaceholderWhenUINotBuilt(t *testing.T) {
	fsys := builtFS(t)
	for name := range fsys {
		if strings.HasPrefix(name, "dist/ui/") {
			delete(fsys, name)
		}
	}
	h := newHandler(fsys)
	resp := get(t, h, "GET", "/", nil)
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "/api/services") {
		t.Fatalf("GET / = %d %q, want the placeholder linking the API", resp.StatusCode, b)
	}
	if resp := get(t, h, "GET", "/spoor/api/v1/red", nil); resp.StatusCode != 404 {
		t.Fatalf("GET /spoor/api/v1/red on the placeholder = %d, want 404", resp.StatusCode)
	}
}

// The binary's own embedded files serve either the app or the placeholder at /.
func TestEmbeddedHandlerServesRoot(t *testing.T) {
	resp := get(t, Handler(), "GET", "/", nil)
	b := body(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(b, "Spoor") {
		t.Fatalf("GET / = %d %q", resp.StatusCode, b)
	}
	if !strings.Contains(b, `id="app"`) && !strings.Contains(b, "/api/services") {
		t.Fatalf("GET / is neither the app nor the placeholder: %q", b)
	}
}

func TestAppRoutesServeIndex(t *testing.T) {
	h := newHandler(builtFS(t))
	for _, p := range []string{"/", "/search?service=a", "/trace/0af7651916cd43dd8448eb211c80319c", "/map", "/flow?operation=POST%20%2Fcheckout", "/alerts", "/no/such/view"} {
		resp := get(t, h, "GET", p, nil)
		if b := body(t, resp); resp.StatusCode != 200 || b != indexHTML {
			t.Errorf("GET %s = %d %q, want index.html", p, resp.StatusCode, b)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s Content-Type = %q", p, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s Cache-Control = %q, want no-cache (a new build must be picked up)", p, cc)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s Content-Security-Policy = %q", p, csp)
		}
	}
}

func TestReservedPathsAreNeverTheApp(t *testing.T) {
	h := newHandler(builtFS(t))
	for _, p := range []string{"/api", "/api/services", "/api/v3/traces", "/spoor/api", "/spoor/api/v1/red", "/healthz", "/healthz/x"} {
		resp := get(t, h, "GET", p, nil)
		if b := body(t, resp); resp.StatusCode != 404 || strings.Contains(b, "<!doctype") {
			t.Errorf("GET %s = %d %q, want a 404 that is not the app", p, resp.StatusCode, b)
		}
	}
	// Names that merely start like a reserved prefix are app routes.
	if resp := get(t, h, "GET", "/apis", nil); resp.StatusCode != 200 {
		t.Errorf("GET /apis = %d, want the app", resp.StatusCode)
	}
}

func TestMissingAssetIs404(t *testing.T) {
	h := newHandler(builtFS(t))
	for _, p := range []string{"/assets/index-old.js", "/favicon.ico", "/assets/x"} {
		if resp := get(t, h, "GET", p, nil); resp.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404 (an HTML answer would break the page with a parse error)", p, resp.StatusCode)
		}
	}
}

func TestAssetsGzipped(t *testing.T) {
	h := newHandler(builtFS(t))
	want := strings.Repeat("console.log('spoor');", 50)

	resp := get(t, h, "GET", "/assets/index-abc.js", map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v, want Content-Encoding gzip and Vary Accept-Encoding", resp.Header)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("Content-Type = %q, want the type of the uncompressed file", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("Cache-Control = %q, want immutable for hashed assets", cc)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || string(got) != want {
		t.Fatalf("gunzipped body = %q, %v", got, err)
	}

	for _, ae := range []string{"", "identity", "gzip;q=0", "br"} {
		resp = get(t, h, "GET", "/assets/index-abc.js", map[string]string{"Accept-Encoding": ae})
		if resp.Header.Get("Content-Encoding") != "" || body(t, resp) != want {
			t.Errorf("Accept-Encoding %q: got Content-Encoding %q, want the plain file", ae, resp.Header.Get("Content-Encoding"))
		}
		if resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary = %q", ae, resp.Header.Get("Vary"))
		}
	}
	// A file without a .gz twin is served as is.
	resp = get(t, h, "GET", "/assets/index-abc.css", map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "" || body(t, resp) != "body{}" {
		t.Errorf("css without .gz: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
}

func TestConditionalHeadAndMethods(t *testing.T) {
	h := newHandler(builtFS(t))
	resp := get(t, h, "GET", "/", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if resp := get(t, h, "GET", "/search", map[string]string{"If-None-Match": etag}); resp.StatusCode != 304 {
		t.Errorf("If-None-Match = %d, want 304", resp.StatusCode)
	}
	resp = get(t, h, "HEAD", "/", nil)
	if resp.StatusCode != 200 || body(t, resp) != "" || resp.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD / = %d with a body or no length", resp.StatusCode)
	}
	if resp := get(t, h, "POST", "/", nil); resp.StatusCode != 405 {
		t.Errorf("POST / = %d, want 405", resp.StatusCode)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip": true, "gzip;q=0": false, "gzip; q=0.5": true,
		"*": true, "*;q=0": false, "br": false, "x-gzip": false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}

// The budget: the embedded UI adds under 5 MB to the binary.
func TestEmbeddedUIUnderBudget(t *testing.T) {
	var total int64
	err := fs.WalkDir(embedded, "dist", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total >= 5<<20 {
		t.Fatalf("embedded UI is %d bytes, over the 5 MB budget", total)
	}
	t.Logf("embedded UI: %d bytes", total)
}
