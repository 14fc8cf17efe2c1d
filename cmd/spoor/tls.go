package main

// TLS in the default config: with SPOOR_TLS_CERT_FILE and SPOOR_TLS_KEY_FILE set, the
// receivers (OTLP gRPC, OTLP HTTP, Zipkin) and the query API and UI serve TLS with that
// certificate. An empty `tls:` block would turn TLS on without a certificate, so
// spoor adds the blocks itself only when the variables are set. The certificate files
// are re-read when they change (the collector's reload_interval), for rotation.
const (
	envTLSCert = "SPOOR_TLS_CERT_FILE"
	envTLSKey  = "SPOOR_TLS_KEY_FILE"
)

// tlsSettings returns the tls block for the servers, or nil when TLS is off. A cert
// without a key (or the reverse) is passed on, for the collector to refuse at start.
func tlsSettings(getenv func(string) string) map[string]any {
	cert, key := getenv(envTLSCert), getenv(envTLSKey)
	if cert == "" && key == "" {
		return nil
	}
	return map[string]any{"cert_file": cert, "key_file": key, "reload_interval": "1m"}
}

// addTLS puts the tls block on every server of the default config that senders or
// readers reach: the OTLP and Zipkin receivers and the query extension.
func addTLS(doc map[string]any, tls map[string]any) {
	receivers := section(doc, "receivers")
	protocols := section(section(receivers, "otlp"), "protocols")
	servers := []map[string]any{
		section(protocols, "grpc"),
		section(protocols, "http"),
		section(receivers, "zipkin"),
		section(section(doc, "extensions"), "spoor_query"),
	}
	for _, s := range servers {
		s["tls"] = tls
	}
}

// SPOOR_PPROF_ENDPOINT (host:port), when set, adds the collector's pprof extension
// there: Go's /debug/pprof for profiles and goroutine counts (make soak reads it).
const envPprof = "SPOOR_PPROF_ENDPOINT"

// addPprof enables the pprof extension on endpoint.
func addPprof(doc map[string]any, endpoint string) {
	section(doc, "extensions")["pprof"] = map[string]any{"endpoint": endpoint}
	service := section(doc, "service")
	service["extensions"] = append(list(service, "extensions"), "pprof")
}
