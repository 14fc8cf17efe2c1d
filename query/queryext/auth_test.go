package queryext

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzAuth sends arbitrary paths, Authorization headers and cookies through the auth
// wrapper: only the exact token (header or cookie) reaches the API; /healthz always
// does; /login (GET) never does, it is the form; nothing panics.
func FuzzAuth(f *testing.F) {
	const token = "tok3n"
	f.Add("/api/services", "Bearer tok3n", "")
	f.Add("/api/traces/abc", "bearer  tok3n ", "")
	f.Add("/", "", "tok3n")
	f.Add("/healthz", "", "")
	f.Add("/login", "Basic dG9rM246", "x")
	f.Add("/api/services", "Bearer tok3nx", "tok3")
	f.Add("/login", "Bearer tok3n", "")
	reached := false
	h := withAuth(token, false, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached = true
		w.WriteHeader(http.StatusOK)
	}))
	f.Fuzz(func(t *testing.T, path, authz, cookie string) {
		u, err := url.Parse("http://spoor" + path)
		if err != nil || !strings.HasPrefix(path, "/") {
			return // not a request a server could receive
		}
		req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Host: "spoor"}
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: TokenCookie, Value: cookie})
		}
		reached = false
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		scheme, cred, _ := strings.Cut(authz, " ")
		good := u.Path == "/healthz" || (u.Path != "/login" &&
			((authz != "" && strings.EqualFold(scheme, "bearer") && strings.TrimSpace(cred) == token) ||
				(authz == "" && req.Header.Get("Cookie") != "" && cookieValue(req) == token)))
		if reached != good {
			t.Fatalf("path %q, Authorization %q, cookie %q: reached the API = %v, want %v", path, authz, cookie, reached, good)
		}
		if !reached && w.Code != http.StatusUnauthorized {
			t.Fatalf("refused with %d, want 401", w.Code)
		}
	})
}

func cookieValue(r *http.Request) string {
	c, err := r.Cookie(TokenCookie)
	if err != nil {
		return ""
	}
	return c.Value
}
