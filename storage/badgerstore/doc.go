// Package badgerstore is Spoor's embedded trace store: storage.Writer and storage.Reader
// on Badger, in the layout written down in storage/FORMAT.md.
//
// It promises what the storage contract asks: a WriteTraces that returns nil has
// committed its spans to disk (with Options.SyncWrites, the default, also through a power
// loss), a retried batch is stored once, and a reader sees all of one batch's spans of a
// trace or none. Memory stays bounded under a burst writer by the sizes in Options.
package badgerstore
