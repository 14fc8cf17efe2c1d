package main

// TLS in the default config: with SPOOR_TLS_CERT_FILE and SPOOR_TLS_KEY_FILE set, the
// receivers (OTLP gRPC, OTLP HTTP, Zipkin) and the query API and UI serve TLS with that
// certificate. An empty `tls:` block would turn TLS on without a certificate, so
// spoor adds the blocks itself only when the variables are set. The certificate files
// are re-read when they change (the collector's reload_interval), for rotation.
//
// SPOOR_TLS_CLIENT_CA_FILE adds mutual TLS: every one of those servers then requires a
// client certificate signed by a CA of that PEM file (the collector's configtls
// client_ca_file: tls.RequireAndVerifyClientCert), and re-reads the file when it
// changes (client_ca_file_reload).
const (
	envTLSCert     = "SPOOR_TLS_CERT_FILE"
	envTLSKey      = "SPOOR_TLS_KEY_FILE"
	envTLSClientCA = "SPOOR_TLS_CLIENT_CA_FILE"
)

// tlsSettings returns the tls block for the servers, or nil when TLS is off. A cert
// without a key (or the reverse), or a client CA without either, is passed on for the
// collector to refuse at start: asking for client certificates must never silently
// leave the servers in plaintext.
func tlsSettings(getenv func(string) string) map[string]any {
	cert, key, clientCA := getenv(envTLSCert), getenv(envTLSKey), getenv(envTLSClientCA)
	if cert == "" && key == "" && clientCA == "" {
		return nil
	}
	tls := map[string]any{"cert_file": cert, "key_file": key, "reload_interval": "1m"}
	if clientCA != "" {
		tls["client_ca_file"] = clientCA
		tls["client_ca_file_reload"] = true
	}
	return tls
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
