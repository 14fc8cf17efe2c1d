package badgerstore

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/spoortrace/spoor/storage"
)

var _ storage.TraceDeleter = (*Store)(nil)

// DeleteTrace deletes the trace's summary fragments (FORMAT.md, "Deleting a trace"):
// every read of a trace starts from them, so the trace is unreachable at once. Its spans
// stay in their blocks, which other traces of the same batches share, until retention
// drops the blocks' bucket.
func (s *Store) DeleteTrace(ctx context.Context, traceID pcommon.TraceID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete trace: %w", err)
	}
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		var prefix [summaryPrefixLen]byte
		it := txn.NewIterator(badger.IteratorOptions{Prefix: appendSummaryPrefix(prefix[:0], traceID)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete trace %s: %w", hex.EncodeToString(traceID[:]), err)
	}
	if len(keys) == 0 {
		return storage.ErrTraceNotFound
	}
	s.retention.dropMu.RLock()
	defer s.retention.dropMu.RUnlock()
	err = s.db.Update(func(txn *badger.Txn) error {
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete trace %s: %w", hex.EncodeToString(traceID[:]), err)
	}
	s.tracesDeleted.Add(1)
	return nil
}
