package badgerstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"

	"github.com/spoortrace/spoor/storage"
)

// Analytics rollups (storage/FORMAT.md, "Analytics rollups"): RED series and service
// graph edges per minute, written as blind delta keys in hour buckets (so retention
// drops them with the spans of the same hour), summed when read, and merged into one
// key per bucket once the hour is over. The store keeps no state for them: the
// analytics stage owns the counting, and every call here reads or writes Badger only.

var (
	_ storage.RollupWriter    = (*Store)(nil)
	_ storage.RollupReader    = (*Store)(nil)
	_ storage.AlertStateStore = (*Store)(nil)
)

const (
	prefixRollupRED  byte = 0x30
	prefixRollupEdge byte = 0x31
	prefixAlertState byte = 0x32

	rollupKeyLen = 1 + 4 + 8 + 4
	// maxRollupsPerValue bounds one delta value; a bigger flush writes several keys.
	maxRollupsPerValue = 4096
)

var (
	// rollupNonce tells this process' keys from another's written in the same
	// nanosecond (a restart with a clock step back).
	rollupNonce = rand.Uint32()
	rollupSeq   atomic.Uint64
)

// nextRollupID is a key suffix no earlier write of this process used.
func nextRollupID(now time.Time) uint64 {
	for {
		last := rollupSeq.Load()
		id := max(last+1, unixNs(now))
		if rollupSeq.CompareAndSwap(last, id) {
			return id
		}
	}
}

func appendRollupKey(dst []byte, prefix byte, bucket uint32, id uint64, nonce uint32) []byte {
	dst = append(dst, prefix)
	dst = binary.BigEndian.AppendUint32(dst, bucket)
	dst = binary.BigEndian.AppendUint64(dst, id)
	return binary.BigEndian.AppendUint32(dst, nonce)
}

func minuteOf(t time.Time) (bucket uint32, minute uint8) {
	ns := unixNs(t)
	return bucketOf(ns), uint8(ns % uint64(bucketWidth) / uint64(storage.RollupStep))
}

func minuteTime(bucket uint32, minute uint8) time.Time {
	return time.Unix(0, int64(bucket)*int64(bucketWidth)+int64(minute)*int64(storage.RollupStep)).UTC()
}

// WriteRollups writes the batch as delta keys, one or more per hour bucket and family,
// in one write batch.
func (s *Store) WriteRollups(ctx context.Context, b storage.RollupBatch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write rollups: %w", err)
	}
	entries := s.rollupEntries(b, time.Now())
	if len(entries) == 0 {
		return nil
	}
	s.retention.dropMu.RLock()
	defer s.retention.dropMu.RUnlock()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, e := range entries {
		if err := wb.SetEntry(e); err != nil {
			return fmt.Errorf("write rollups: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("write %d rollup keys: %w", len(entries), err)
	}
	return nil
}

// rollupEntries encodes a batch as delta keys: per family and hour bucket, values of
// at most maxRollupsPerValue records.
func (s *Store) rollupEntries(b storage.RollupBatch, now time.Time) []*badger.Entry {
	var out []*badger.Entry
	exp := s.expiresAt(now)
	vals, counts := map[uint32][]byte{}, map[uint32]int{}
	emit := func(prefix byte, bucket uint32) {
		v := binary.AppendUvarint(make([]byte, 0, len(vals[bucket])+4), uint64(counts[bucket]))
		v = append(v, vals[bucket]...)
		out = append(out, &badger.Entry{Key: appendRollupKey(nil, prefix, bucket, nextRollupID(now), rollupNonce), Value: v, ExpiresAt: exp})
		delete(vals, bucket)
		delete(counts, bucket)
	}
	add := func(prefix byte, t time.Time, a, b string, kind uint8, calls, errs float64, h storage.Histogram) {
		bucket, minute := minuteOf(t)
		v := append(vals[bucket], minute)
		v = appendRollupStr(v, a)
		v = appendRollupStr(v, b)
		v = append(v, kind)
		v = appendF64(v, calls)
		v = appendF64(v, errs)
		vals[bucket] = appendHistogram(v, h)
		if counts[bucket]++; counts[bucket] >= maxRollupsPerValue {
			emit(prefix, bucket)
		}
	}
	for i := range b.RED {
		r := &b.RED[i]
		add(prefixRollupRED, r.Minute, r.Service, r.Operation, r.Kind, r.Calls, r.Errors, r.Duration)
	}
	for bucket := range vals {
		emit(prefixRollupRED, bucket)
	}
	for i := range b.Edges {
		e := &b.Edges[i]
		add(prefixRollupEdge, e.Minute, e.Parent, e.Child, uint8(e.Kind), e.Calls, e.Errors, e.Latency)
	}
	for bucket := range vals {
		emit(prefixRollupEdge, bucket)
	}
	return out
}

// HasRollups reports whether any rollup key is stored.
func (s *Store) HasRollups() bool {
	found := false
	_ = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})
		defer it.Close()
		for _, p := range [...]byte{prefixRollupRED, prefixRollupEdge} {
			it.Seek([]byte{p})
			if it.ValidForPrefix([]byte{p}) {
				found = true
				return nil
			}
		}
		return nil
	})
	return found
}

type redKey struct {
	minute             int64
	service, operation string
	kind               uint8
}

// ReadRED sums the RED deltas of the minutes overlapping [q.Start, q.End].
func (s *Store) ReadRED(ctx context.Context, q storage.RollupQuery) (out []storage.REDRollup, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		out, err = readRED(ctx, txn, q, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read RED rollups: %w", err)
	}
	return out, nil
}

// readRED sums the RED records of q in txn; keys, when not nil, collects the keys read.
func readRED(ctx context.Context, txn *badger.Txn, q storage.RollupQuery, keys *[][]byte) ([]storage.REDRollup, error) {
	sums := map[redKey]*storage.REDRollup{}
	err := scanRollups(ctx, txn, prefixRollupRED, q, keys, func(bucket uint32, r *rollupReader, rr rollupRange) bool {
		minute := r.u8()
		svc, op := r.str(), r.str()
		kind := r.u8()
		calls, errs := r.f64(), r.f64()
		h := r.histogram()
		if r.bad || !rr.has(bucket, minute) || (q.Service != "" && q.Service != svc) {
			return !r.bad
		}
		k := redKey{minute: int64(bucket)*60 + int64(minute), service: svc, operation: op, kind: kind}
		acc, ok := sums[k]
		if !ok {
			acc = &storage.REDRollup{Minute: minuteTime(bucket, minute), Service: clone(svc), Operation: clone(op), Kind: kind}
			sums[k] = acc
		}
		acc.Calls += calls
		acc.Errors += errs
		acc.Duration.Merge(h)
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]storage.REDRollup, 0, len(sums))
	for _, r := range sums {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b storage.REDRollup) int {
		return cmp.Or(a.Minute.Compare(b.Minute), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Kind, b.Kind))
	})
	return out, nil
}

// ReadEdges sums the edge deltas of the minutes overlapping [q.Start, q.End].
func (s *Store) ReadEdges(ctx context.Context, q storage.RollupQuery) (out []storage.EdgeRollup, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		out, err = readEdges(ctx, txn, q, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read edge rollups: %w", err)
	}
	return out, nil
}

func readEdges(ctx context.Context, txn *badger.Txn, q storage.RollupQuery, keys *[][]byte) ([]storage.EdgeRollup, error) {
	sums := map[redKey]*storage.EdgeRollup{} // service = parent, operation = child
	err := scanRollups(ctx, txn, prefixRollupEdge, q, keys, func(bucket uint32, r *rollupReader, rr rollupRange) bool {
		minute := r.u8()
		parent, child := r.str(), r.str()
		kind := r.u8()
		calls, errs := r.f64(), r.f64()
		h := r.histogram()
		if r.bad || !rr.has(bucket, minute) || (q.Service != "" && q.Service != parent && q.Service != child) {
			return !r.bad
		}
		k := redKey{minute: int64(bucket)*60 + int64(minute), service: parent, operation: child, kind: kind}
		acc, ok := sums[k]
		if !ok {
			acc = &storage.EdgeRollup{Minute: minuteTime(bucket, minute), Parent: clone(parent), Child: clone(child), Kind: storage.EdgeKind(kind)}
			sums[k] = acc
		}
		acc.Calls += calls
		acc.Errors += errs
		acc.Latency.Merge(h)
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]storage.EdgeRollup, 0, len(sums))
	for _, e := range sums {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b storage.EdgeRollup) int {
		return cmp.Or(a.Minute.Compare(b.Minute), cmp.Compare(a.Parent, b.Parent),
			cmp.Compare(a.Child, b.Child), cmp.Compare(a.Kind, b.Kind))
	})
	return out, nil
}

type rollupRange struct{ lo, hi int64 } // minutes since the epoch, inclusive

func (rr rollupRange) has(bucket uint32, minute uint8) bool {
	m := int64(bucket)*int64(bucketWidth/storage.RollupStep) + int64(minute)
	return m >= rr.lo && m <= rr.hi
}

// scanRollups calls fn for every record of the family's keys in the buckets that
// overlap q; fn reads one record and returns false when it was malformed.
func scanRollups(ctx context.Context, txn *badger.Txn, prefix byte, q storage.RollupQuery, keys *[][]byte, fn func(bucket uint32, r *rollupReader, rr rollupRange) bool) error {
	if q.End.IsZero() || q.End.Before(q.Start) {
		return nil
	}
	lo, hi := bucketOf(unixNs(q.Start)), bucketOf(unixNs(q.End))
	step := uint64(storage.RollupStep)
	rr := rollupRange{lo: int64(unixNs(q.Start) / step), hi: int64(unixNs(q.End) / step)}
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 16, Prefix: []byte{prefix}})
	defer it.Close()
	seek := binary.BigEndian.AppendUint32([]byte{prefix}, lo)
	for it.Seek(seek); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		item := it.Item()
		key := item.Key()
		if len(key) != rollupKeyLen {
			return fmt.Errorf("rollup key %x: want %d bytes", key, rollupKeyLen)
		}
		bucket := binary.BigEndian.Uint32(key[1:5])
		if bucket > hi {
			return nil
		}
		if keys != nil {
			*keys = append(*keys, item.KeyCopy(nil))
		}
		err := item.Value(func(v []byte) error {
			r := rollupReader{byteReader{b: v}}
			n := r.uvarint()
			for i := uint64(0); i < n && !r.bad; i++ {
				if !fn(bucket, &r, rr) {
					r.bad = true
				}
			}
			if r.bad || len(r.b) != 0 {
				return errBadRollupValue
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("rollup key %x: %w", key, err)
		}
	}
	return nil
}

var errBadRollupValue = errors.New("rollup value malformed")

func appendRollupStr(dst []byte, s string) []byte {
	if len(s) > maxNameLen {
		s = s[:maxNameLen]
	}
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendF64(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
}

// appendHistogram writes the non-zero buckets: n uvarint, n × (index uvarint | f64).
func appendHistogram(dst []byte, h storage.Histogram) []byte {
	n := 0
	for _, c := range h.Counts {
		if c != 0 {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for i, c := range h.Counts {
		if c != 0 {
			dst = binary.AppendUvarint(dst, uint64(i))
			dst = appendF64(dst, c)
		}
	}
	return dst
}

// rollupReader is the summary's byteReader with the rollups' own fields.
type rollupReader struct{ byteReader }

func (r *rollupReader) f64() float64 {
	if v := r.take(8); v != nil {
		return math.Float64frombits(binary.BigEndian.Uint64(v))
	}
	return 0
}

// str returns a string pointing into the value: callers clone what they keep.
func (r *rollupReader) str() string {
	n := r.uvarint()
	if n > maxNameLen {
		r.bad = true
		return ""
	}
	v := r.take(int(n))
	return unsafe.String(unsafe.SliceData(v), len(v))
}

func (r *rollupReader) histogram() storage.Histogram {
	n := r.uvarint()
	if n > storage.HistogramBuckets {
		r.bad = true
		return storage.Histogram{}
	}
	var h storage.Histogram
	for range n {
		i := r.uvarint()
		c := r.f64()
		if r.bad || i >= storage.HistogramBuckets {
			r.bad = true
			return storage.Histogram{}
		}
		if int(i) >= len(h.Counts) {
			h.Counts = append(h.Counts, make([]float64, int(i)+1-len(h.Counts))...)
		}
		h.Counts[i] += c
	}
	return h
}

// CompactRollups merges the delta keys of every hour bucket that ended before now
// into one key per bucket and family, each bucket in one transaction. The analytics
// stage calls it now and then; a bucket with one key is left alone, so it costs a
// key-only scan of the rollup families when there is nothing to do.
func (s *Store) CompactRollups(ctx context.Context, now time.Time) error {
	current := bucketOf(unixNs(now))
	for _, prefix := range [...]byte{prefixRollupRED, prefixRollupEdge} {
		counts := map[uint32]int{}
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefix}})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				key := it.Item().Key()
				if len(key) == rollupKeyLen {
					if b := binary.BigEndian.Uint32(key[1:5]); b < current {
						counts[b]++
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("compact rollups: %w", err)
		}
		for b, n := range counts {
			if n < 2 {
				continue
			}
			if err := s.compactRollupBucket(ctx, prefix, b, now); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) compactRollupBucket(ctx context.Context, prefix byte, bucket uint32, now time.Time) error {
	start := minuteTime(bucket, 0)
	q := storage.RollupQuery{Start: start, End: start.Add(bucketWidth - 1)}
	s.retention.dropMu.RLock()
	defer s.retention.dropMu.RUnlock()
	// Read, delete and replace in one transaction: a delta written meanwhile (late
	// spans of an old hour) is not in its snapshot, so it is neither summed nor deleted.
	err := s.db.Update(func(txn *badger.Txn) error {
		var keys [][]byte
		var batch storage.RollupBatch
		var err error
		if prefix == prefixRollupRED {
			batch.RED, err = readRED(ctx, txn, q, &keys)
		} else {
			batch.Edges, err = readEdges(ctx, txn, q, &keys)
		}
		if err != nil || len(keys) < 2 {
			return err
		}
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		for _, e := range s.rollupEntries(batch, now) {
			if err := txn.SetEntry(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("compact rollup bucket %d: %w", bucket, err)
	}
	return nil
}

// PutAlertState replaces the alert engine's state document.
func (s *Store) PutAlertState(ctx context.Context, doc []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put alert state: %w", err)
	}
	e := &badger.Entry{Key: []byte{prefixAlertState}, Value: slices.Clone(doc), ExpiresAt: s.expiresAt(time.Now())}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.SetEntry(e) }); err != nil {
		return fmt.Errorf("put alert state: %w", err)
	}
	return nil
}

// GetAlertState returns the last alert state document, or nil.
func (s *Store) GetAlertState(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get alert state: %w", err)
	}
	var doc []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte{prefixAlertState})
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		doc, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get alert state: %w", err)
	}
	return doc, nil
}
