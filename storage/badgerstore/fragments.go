package badgerstore

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// A trace's summary fragments are the postings of its own field (FORMAT.md, "Trace
// summary fragments"): one per block holding its spans, in the head with the block's
// other postings and then in its bucket's segment pages. Version 4 wrote each as a Badger
// key, and their skiplist inserts, memtable flushes and compactions were a third of the
// store's write CPU on telemetrygen-shaped batches.

// tombstones are the deleted traces (FORMAT.md, "Deleting a trace"), each with the last
// block sequence number handed out when it was deleted.
type tombstones struct {
	mu sync.RWMutex
	m  map[pcommon.TraceID]uint64
}

func (t *tombstones) get(id pcommon.TraceID) uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[id]
}

func (t *tombstones) set(id pcommon.TraceID, seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[pcommon.TraceID]uint64{}
	}
	t.m[id] = max(t.m[id], seq)
}

// loadTombstones reads every tombstone into memory (they are few: one per deletion).
func (s *Store) loadTombstones() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTombstone}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()
			if len(key) != tombstoneKeyLen {
				return fmt.Errorf("load tombstones: key %x is not %d bytes", key, tombstoneKeyLen)
			}
			var id pcommon.TraceID
			copy(id[:], key[1:])
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("load tombstones: value %x of trace %s is not 8 bytes", v, hex.EncodeToString(id[:]))
				}
				s.deleted.set(id, binary.BigEndian.Uint64(v))
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// fragments appends the postings of field f (a trace's field) from the state's heads,
// every bucket they hold, and from every segment whose Bloom filter may hold f.
func (s *Store) fragments(txn *badger.Txn, st *indexState, f uint64, dst []posting) ([]posting, error) {
	s.idx.mu.RLock()
	for _, h := range st.heads {
		for _, b := range h.buckets {
			dst = h.collect(b, f, dst)
		}
	}
	s.idx.mu.RUnlock()
	for _, list := range st.segs {
		for _, sg := range list {
			if !sg.bloom.mayContain(f) {
				continue
			}
			var err error
			if dst, err = s.segFragments(txn, sg, f, dst); err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

var errFragment = errors.New("summary fragment truncated")

// traceSummary merges into sum the trace's fragments of blocks numbered at or below
// asOfSeq and above its tombstone; found is false when there are none. Fragments merge
// in block hash order, so equal root starts resolve the same way whatever the order the
// blocks were written or flushed in.
func (s *Store) traceSummary(txn *badger.Txn, st *indexState, id pcommon.TraceID, sum *summary, asOfSeq uint64) (bool, error) {
	var h fieldHasher
	var stack [8]posting
	posts, err := s.fragments(txn, st, h.trace(id), stack[:0])
	if err != nil {
		return false, fmt.Errorf("read summary of trace %s: %w", hex.EncodeToString(id[:]), err)
	}
	tomb := s.deleted.get(id)
	posts = slices.DeleteFunc(posts, func(p posting) bool { return p.seq > asOfSeq || p.seq <= tomb })
	if len(posts) == 0 {
		return false, nil
	}
	slices.SortFunc(posts, func(a, b posting) int {
		if c := cmp.Compare(a.ref.hash, b.ref.hash); c != 0 {
			return c
		}
		return cmp.Compare(a.ref.bucket, b.ref.bucket)
	})
	var frag summary
	for i, p := range posts {
		if i > 0 && p.ref == posts[i-1].ref {
			continue
		}
		dst := sum
		if i > 0 {
			dst = &frag
		}
		if err := dst.decodeFragment(p.val, p.ref.bucket >= s.okFrom); err != nil {
			return false, fmt.Errorf("read summary of trace %s, block %x/%x: %w", hex.EncodeToString(id[:]), p.ref.bucket, p.ref.hash, err)
		}
		if i > 0 {
			sum.merge(&frag)
		}
		sum.addBlock(p.ref)
	}
	return true, nil
}
