// Package storagetest is the conformance suite every Spoor trace store must pass, in the
// shape of Jaeger's storage integration tests: the Jaeger fixture traces and their 25
// search cases (no opt-outs), plus round-trip, idempotency, catalog, ordering, restart,
// invalid-input and concurrency cases. A backend runs it with RunAll.
package storagetest
