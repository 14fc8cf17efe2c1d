package badgerstore

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// readValue reads key's value in txn and hands it to decode, for the immutable keys of
// the store (blocks, trace tables, segment pages). When decode refuses the bytes it reads
// the key once more in a fresh transaction: value-log GC moves values and deletes the
// old file while point reads (which, unlike iterators, do not hold it open) may still be
// reading it — seen once under load as a trace table that would not decode right after
// a retention pass. A second failure is returned: the value itself is bad.
func (s *Store) readValue(txn *badger.Txn, key []byte, decode func([]byte) error) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err = item.Value(decode); err == nil {
		return true, nil
	}
	found := false
	retry := s.db.View(func(fresh *badger.Txn) error {
		item, err := fresh.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return item.Value(decode)
	})
	if retry != nil {
		return false, errors.Join(err, retry)
	}
	s.valueRereads.Add(1)
	return found, nil
}
