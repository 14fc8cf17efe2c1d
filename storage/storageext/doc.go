// Package storageext is the collector extension that owns Spoor's trace store: it opens
// the Badger store when the collector starts and closes it when the collector stops.
// Other components (the storage exporter, the query extension) find the store through
// the host with GetStore, the way Jaeger v2's jaeger_storage extension shares its
// backends. Extensions start before pipelines and stop after them, so a store found
// this way is open for as long as any pipeline runs.
package storageext
