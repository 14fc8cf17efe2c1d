// Package storageext is the collector extension that owns Spoor's trace store: it opens
// the Badger store when the collector starts and closes it when the collector stops.
// Other components (the storage exporter, the query extension) find the store through
// the host with GetStore, the way Jaeger v2's jaeger_storage extension shares its
// backends. Extensions start before pipelines and stop after them, so a store found
// this way is open for as long as any pipeline runs.
//
// The store they get (Store) stands in front of the Badger store so that the extension
// can close and reopen it after a write error, and its WriteGuard refuses writes, with
// a retryable error, while the disk is too full or the data directory does not take
// writes (guard.go, store.go).
package storageext
