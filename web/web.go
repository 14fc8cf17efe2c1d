package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// dist holds the built UI under dist/ui when `make ui` ran before the Go build; otherwise
// only dist/README.md, and the placeholder page is served.
//
//go:embed all:dist placeholder
var embedded embed.FS

// Handler serves the UI: the built single-page app when it was embedded, else the
// placeholder page.
func Handler() http.Handler { return newHandler(embedded) }

// reserved reports paths the UI must never answer with its index page: the query APIs and
// the health check live there, and a request that reaches the UI for one of them means the
// route is not served by this build; it gets a 404, not HTML a client would try to parse.
func reserved(p string) bool {
	for _, prefix := range []string{"/api", "/spoor/api", "/healthz"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

func newHandler(fsys fs.FS) http.Handler {
	ui, err := fs.Sub(fsys, "dist/ui")
	if err == nil {
		if h, ok := newAppHandler(ui); ok {
			return h
		}
	}
	sub, err := fs.Sub(fsys, "placeholder")
	if err != nil {
		panic("BUG: embedded placeholder directory missing: " + err.Error())
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reserved(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"

// asset is one embedded file, with its precompressed twin when the build made one.
type asset struct {
	raw, gz     []byte
	contentType string
	etag        string
	immutable   bool
}

// appHandler serves the single-page app. Every file was read once at start (they are in
// the binary anyway). Paths that name no file and look like a route get index.html, so a
// copied URL of any view opens that view; paths that look like files get a 404.
type appHandler struct {
	files map[string]*asset
	index *asset
}

func newAppHandler(ui fs.FS) (*appHandler, bool) {
	if _, err := fs.Stat(ui, "index.html"); err != nil {
		return nil, false
	}
	h := &appHandler{files: map[string]*asset{}}
	err := fs.WalkDir(ui, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(name, ".gz") {
			return err
		}
		raw, err := fs.ReadFile(ui, name)
		if err != nil {
			return err
		}
		a := &asset{raw: raw, contentType: mime.TypeByExtension(path.Ext(name)), immutable: strings.HasPrefix(name, "assets/")}
		if a.contentType == "" {
			a.contentType = http.DetectContentType(raw)
		}
		if gz, err := fs.ReadFile(ui, name+".gz"); err == nil {
			a.gz = gz
		}
		sum := sha256.Sum256(raw)
		a.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
		h.files[name] = a
		return nil
	})
	if err != nil {
		panic("BUG: embedded UI unreadable: " + err.Error())
	}
	h.index = h.files["index.html"]
	return h, h.index != nil
}

func (h *appHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if reserved(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	a := h.files[name]
	if a == nil {
		last := name[strings.LastIndexByte(name, '/')+1:]
		if strings.HasPrefix(name, "assets/") || strings.Contains(last, ".") {
			http.NotFound(w, r)
			return
		}
		a = h.index
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("ETag", a.etag)
	if strings.HasPrefix(a.contentType, "text/html") {
		// The app loads nothing but its own files and talks to nothing but this server;
		// styles are set through the CSSOM, which style-src 'self' allows.
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
		hdr.Set("Referrer-Policy", "same-origin")
	}
	if a.immutable {
		// Vite puts a content hash in every asset's name.
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	body := a.raw
	if a.gz != nil {
		hdr.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			hdr.Set("Content-Encoding", "gzip")
			body = a.gz
		}
	}
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// acceptsGzip reads an Accept-Encoding header: gzip (or *) listed without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == etag || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
