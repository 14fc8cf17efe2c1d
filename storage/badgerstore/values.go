package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/spoortrace/spoor/storage"
)

var _ storage.AttributeValueReader = (*Store)(nil)

// The attribute value catalog (FORMAT.md, prefix 0x23): for the attribute keys readers
// name (Zipkin's remote service keys and autocomplete keys), the values seen per service,
// kept at write time like the service and operation catalogs, so that listing them
// reads no span. A key with very many values (an ID) stops growing at
// maxValuesPerScope values per service; further values are counted, not kept.

const (
	maxValuesPerScope = 1000
	maxCatalogValue   = 256 // longer values are not indexed either
)

// valueKey is one cataloged value of an attribute key on spans of a service.
type valueKey struct {
	service, key, value string
}

type valueScope struct {
	service, key string
}

// valueKeys is the set of cataloged keys. lens has bit n set when a key is n bytes long
// (n < 64; longer keys set bit 63), so that most attributes are rejected on the ingest
// path without comparing strings.
type valueKeys struct {
	lens uint64
	set  map[string]struct{}
}

func (k *valueKeys) has(key string) bool {
	if k.lens&(1<<min(len(key), 63)) == 0 {
		return false
	}
	_, ok := k.set[key]
	return ok
}

type valueCatalog struct {
	keys    atomic.Pointer[valueKeys]
	mu      sync.RWMutex
	vals    map[valueScope]map[string]int64 // value → key expiry (unix seconds)
	dropped atomic.Int64
}

// CatalogAttributeValues adds keys to the cataloged attribute keys.
func (s *Store) CatalogAttributeValues(keys ...string) {
	for {
		old := s.values.keys.Load()
		next := &valueKeys{set: map[string]struct{}{}}
		if old != nil {
			next.lens = old.lens
			for k := range old.set {
				next.set[k] = struct{}{}
			}
		}
		for _, k := range keys {
			if k != "" && len(k) <= maxNameLen {
				next.set[k] = struct{}{}
				next.lens |= 1 << min(len(k), 63)
			}
		}
		if s.values.keys.CompareAndSwap(old, next) {
			return
		}
	}
}

// GetAttributeValues returns the cataloged values of q.Key, sorted.
func (s *Store) GetAttributeValues(ctx context.Context, q storage.AttributeValuesQuery) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get attribute values: %w", err)
	}
	now := time.Now().Unix()
	out := []string{}
	s.values.mu.RLock()
	for scope, vals := range s.values.vals {
		if scope.key != q.Key || (q.ServiceName != "" && scope.service != q.ServiceName) {
			continue
		}
		for v, exp := range vals {
			if exp == 0 || exp >= now {
				out = append(out, v)
			}
		}
	}
	s.values.mu.RUnlock()
	slices.Sort(out)
	out = slices.Compact(out)
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// collectValues appends to catalog the batch's attribute values that are new, or whose
// key expires within half the retention.
func (s *Store) collectValues(w *writeScratch, catalog []catalogEntry, now time.Time) []catalogEntry {
	if len(w.vals) == 0 {
		return catalog
	}
	refreshBefore := now.Add(s.opts.Retention / 2).Unix()
	s.values.mu.RLock()
	defer s.values.mu.RUnlock()
	var added map[valueScope]int // new values of this batch, per scope, against the cap
	for _, v := range w.vals {
		if len(v.service) > maxNameLen || len(v.value) > maxCatalogValue {
			continue
		}
		if _, seen := w.seenVal[v]; seen {
			continue
		}
		w.seenVal[v] = struct{}{}
		scope := valueScope{service: v.service, key: v.key}
		vals := s.values.vals[scope]
		exp, ok := vals[v.value]
		if ok && (exp == 0 || exp >= refreshBefore) {
			continue
		}
		if !ok {
			if len(vals)+added[scope] >= maxValuesPerScope {
				s.values.dropped.Add(1)
				continue
			}
			if added == nil {
				added = map[valueScope]int{}
			}
			added[scope]++
		}
		catalog = append(catalog, catalogEntry{key: appendValueKey(nil, v), val: v, isVal: true})
	}
	return catalog
}

func (c *valueCatalog) remember(v valueKey, exp int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rememberLocked(v, exp)
}

func (c *valueCatalog) rememberLocked(v valueKey, exp int64) {
	scope := valueScope{service: v.service, key: v.key}
	vals := c.vals[scope]
	if vals == nil {
		if c.vals == nil {
			c.vals = map[valueScope]map[string]int64{}
		}
		vals = map[string]int64{}
		c.vals[scope] = vals
	}
	vals[v.value] = exp
}

// appendValueKey is 23 | len(service) uint16 | service | len(key) uint16 | key | value.
func appendValueKey(dst []byte, v valueKey) []byte {
	dst = append(dst, prefixValue)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(v.service)))
	dst = append(dst, v.service...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(v.key)))
	dst = append(dst, v.key...)
	return append(dst, v.value...)
}

func decodeValueKey(k []byte) (valueKey, bool) {
	if len(k) < 3 || k[0] != prefixValue {
		return valueKey{}, false
	}
	k = k[1:]
	n := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+n+2 {
		return valueKey{}, false
	}
	svc := string(k[2 : 2+n])
	k = k[2+n:]
	m := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+m {
		return valueKey{}, false
	}
	return valueKey{service: svc, key: string(k[2 : 2+m]), value: string(k[2+m:])}, true
}

// loadValues reads the value catalog (keys only).
func (s *Store) loadValues() error {
	s.values.mu.Lock()
	defer s.values.mu.Unlock()
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixValue}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, ok := decodeValueKey(item.Key())
			if !ok {
				return fmt.Errorf("attribute value catalog key %x is malformed", item.Key())
			}
			s.values.rememberLocked(v, int64(item.ExpiresAt()))
		}
		return nil
	})
}
