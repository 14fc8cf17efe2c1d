package query

// routes registers every route of the API. New surfaces (Jaeger /api/v3, Zipkin /api/v2,
// Spoor's own API) are added here and nowhere else, so a reader sees the whole URL space at
// once and collisions between surfaces show up in one diff.
func (a *API) routes() {
	a.e.GET("/healthz", a.healthz)

	// Jaeger internal HTTP JSON API (REFERENCE.md §1.2).
	api := a.e.Group("/api")
	api.GET("/services", a.jaegerServices)
	api.GET("/services/:service/operations", a.jaegerServiceOperations)
	api.GET("/operations", a.jaegerOperations)
	api.GET("/traces", a.jaegerSearch)
	api.GET("/traces/:traceID", a.jaegerTrace)
	api.GET("/dependencies", a.jaegerDependencies)
	api.POST("/transform", a.jaegerTransform)
	api.POST("/archive/:traceID", a.jaegerArchive)

	// Jaeger api_v3 HTTP gateway (REFERENCE.md §1.3).
	v3 := a.e.Group("/api/v3")
	v3.GET("/services", a.v3Services)
	v3.GET("/operations", a.v3Operations)
	v3.GET("/traces", a.v3Search)
	v3.GET("/traces/:traceID", a.v3Trace)
	v3.GET("/trace-summaries", a.v3TraceSummaries)

	// Spoor's own API, described by its OpenAPI document.
	spoor := a.e.Group("/spoor/api/v1")
	spoor.GET("/openapi.json", a.spoorOpenAPI)
	spoor.GET("/search", a.spoorSearch)
	spoor.GET("/flows", a.spoorFlows)
	spoor.GET("/traces/:traceID/summary", a.spoorTraceSummary)
	spoor.DELETE("/traces/:traceID", a.spoorDeleteTrace)
	// Analytics rollups and alerts (spoor.go).
	spoor.GET("/red", a.spoorRED)
	spoor.GET("/graph", a.spoorGraph)
	spoor.GET("/alerts", a.spoorAlerts)

	// Zipkin API v2 (REFERENCE.md §1.1).
	zipkin := a.e.Group("/api/v2")
	zipkin.GET("/services", a.zipkinServices)
	zipkin.GET("/spans", a.zipkinSpanNames)
	zipkin.GET("/remoteServices", a.zipkinRemoteServices)
	zipkin.GET("/traces", a.zipkinSearch)
	zipkin.GET("/trace/:traceId", a.zipkinTrace)
	zipkin.GET("/traceMany", a.zipkinTraceMany)
	zipkin.GET("/dependencies", a.zipkinDependencies)
	zipkin.GET("/autocompleteKeys", a.zipkinAutocompleteKeys)
	zipkin.GET("/autocompleteValues", a.zipkinAutocompleteValues)
}
