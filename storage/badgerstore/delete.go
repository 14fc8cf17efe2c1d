package badgerstore

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/spoortrace/spoor/storage"
)

var _ storage.TraceDeleter = (*Store)(nil)

// DeleteTrace writes the trace's tombstone (FORMAT.md, "Deleting a trace"): every read of
// a trace starts from its summary fragments, and the tombstone hides those of every block
// numbered so far, so the trace is unreachable at once. Its spans stay in their blocks,
// which other traces of the same batches share, until retention drops the blocks' bucket.
func (s *Store) DeleteTrace(ctx context.Context, traceID pcommon.TraceID) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete trace: %w", err)
	}
	// Deletions of one store are serialized: each reads, then writes, a tombstone.
	s.deleteMu.Lock()
	defer s.deleteMu.Unlock()
	txn, st := s.begin()
	var sum summary
	found, err := s.traceSummary(txn, st, traceID, &sum, math.MaxUint64)
	txn.Discard()
	if err != nil {
		return fmt.Errorf("delete trace %s: %w", hex.EncodeToString(traceID[:]), err)
	}
	if !found {
		return storage.ErrTraceNotFound
	}
	seq := s.idx.lastSeq()
	var key [tombstoneKeyLen]byte
	e := &badger.Entry{Key: appendTombstoneKey(key[:0], traceID), Value: binary.BigEndian.AppendUint64(nil, seq), ExpiresAt: s.expiresAt(time.Now())}
	s.retention.dropMu.RLock()
	err = s.db.Update(func(txn *badger.Txn) error { return txn.SetEntry(e) })
	s.retention.dropMu.RUnlock()
	if err != nil {
		return fmt.Errorf("delete trace %s: %w", hex.EncodeToString(traceID[:]), err)
	}
	s.deleted.set(traceID, seq)
	s.tracesDeleted.Add(1)
	return nil
}
