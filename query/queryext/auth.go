package queryext

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"strings"
)

// TokenCookie is the cookie the login page sets: a browser sends it instead of the
// Authorization header. Its value is the token itself.
const TokenCookie = "spoor_token"

// withAuth lets a request through only with `Authorization: Bearer <token>` or the
// spoor_token cookie. /healthz stays open (load balancers and orchestrators probe it
// without credentials), and /login is the form that sets the cookie. Anything else
// without credentials gets 401: the API a JSON error, a browser the login form.
func withAuth(token string, secureCookie bool, next http.Handler) http.Handler {
	want := []byte(token)
	ok := func(got string) bool { return subtle.ConstantTimeCompare([]byte(got), want) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			next.ServeHTTP(w, r)
			return
		case "/login":
			login(w, r, ok, secureCookie)
			return
		}
		if h := r.Header.Get("Authorization"); h != "" {
			if scheme, cred, found := strings.Cut(h, " "); found && strings.EqualFold(scheme, "Bearer") && ok(strings.TrimSpace(cred)) {
				next.ServeHTTP(w, r)
				return
			}
		} else if c, err := r.Cookie(TokenCookie); err == nil && ok(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		unauthorized(w, r, "")
	})
}

func unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="spoor"`)
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/api/") || !strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":401,"msg":"authentication required: send Authorization: Bearer <SPOOR_QUERY_AUTH_TOKEN>"}]}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_ = loginPage.Execute(w, msg)
}

// login serves the form (GET) and checks it (POST): the right token sets the cookie
// and sends the browser to the UI.
func login(w http.ResponseWriter, r *http.Request, ok func(string) bool, secureCookie bool) {
	if r.Method != http.MethodPost {
		unauthorized(w, r, "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil || !ok(r.PostForm.Get("token")) {
		unauthorized(w, r, "Wrong token.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: TokenCookie, Value: r.PostForm.Get("token"), Path: "/",
		HttpOnly: true, Secure: secureCookie, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Spoor — sign in</title></head>
<body style="font-family:sans-serif;max-width:24em;margin:4em auto">
<h1>Spoor</h1>
<p>This Spoor needs its access token (SPOOR_QUERY_AUTH_TOKEN).</p>
{{if .}}<p style="color:#b00">{{.}}</p>{{end}}
<form method="post" action="/login">
<input type="password" name="token" autofocus style="width:100%" aria-label="token">
<p><button type="submit">Sign in</button></p>
</form>
</body></html>
`))
