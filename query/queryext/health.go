package queryext

import (
	"encoding/json"
	"net/http"

	"github.com/spoortrace/spoor/storage/storageext"
)

// storageHealth answers /healthz with 503 and the reason while the store refuses or
// fails writes — Spoor then takes no spans, though it still answers queries — and
// hands the request to next otherwise. A load balancer reading it as readiness sends
// spans elsewhere; it is not a liveness signal: the store recovers by itself.
func storageHealth(g *storageext.WriteGuard, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g == nil {
			next.ServeHTTP(w, r)
			return
		}
		if reason := g.Health(); reason != "" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "degraded", "storage": reason})
			return
		}
		next.ServeHTTP(w, r)
	})
}
