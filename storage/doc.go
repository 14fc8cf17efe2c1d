// Package storage is Spoor's trace store contract: a Writer that is durable and idempotent,
// and a Reader that finds traces by ID and by search. The Badger engine behind it lives in
// storage/badgerstore; its byte layout is written down in storage/FORMAT.md. The
// collector components that put the store in a pipeline live in storage/storageext
// (the extension that owns the store) and storage/storageexporter (the exporter that
// writes to it, acknowledging spans only after they are committed).
package storage
