package badgerstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// FindTraceIDs returns the IDs of the traces matching q, newest first.
func (s *Store) FindTraceIDs(ctx context.Context, q storage.TraceQuery) ([]pcommon.TraceID, error) {
	ms, err := s.find(ctx, q, false)
	if err != nil {
		return nil, err
	}
	ids := make([]pcommon.TraceID, len(ms))
	for i, m := range ms {
		ids[i] = m.id
	}
	return ids, nil
}

// FindTraces returns the traces matching q, newest first.
func (s *Store) FindTraces(ctx context.Context, q storage.TraceQuery) ([]ptrace.Traces, error) {
	ms, err := s.find(ctx, q, true)
	if err != nil {
		return nil, err
	}
	out := make([]ptrace.Traces, len(ms))
	for i, m := range ms {
		out[i] = m.td
	}
	return out, nil
}

type match struct {
	id    pcommon.TraceID
	start uint64
	td    ptrace.Traces // set for FindTraces
}

// compareMatch orders newest first, then by trace ID ascending.
func compareMatch(a, b match) int {
	if c := cmp.Compare(b.start, a.start); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}

func validateQuery(q storage.TraceQuery) error {
	if !q.StartTimeMin.IsZero() && !q.StartTimeMax.IsZero() && q.StartTimeMax.Before(q.StartTimeMin) {
		return &storage.InvalidInputError{Reason: fmt.Sprintf("start time max %s is before min %s", q.StartTimeMax, q.StartTimeMin)}
	}
	if q.DurationMin < 0 || q.DurationMax < 0 {
		return &storage.InvalidInputError{Reason: "negative duration bound"}
	}
	if q.DurationMax > 0 && q.DurationMax < q.DurationMin {
		return &storage.InvalidInputError{Reason: fmt.Sprintf("duration max %s is less than min %s", q.DurationMax, q.DurationMin)}
	}
	return nil
}

func unixNs(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// drivingField picks the index to walk: the most selective field the query names.
func drivingField(q storage.TraceQuery) uint64 {
	var h fieldHasher
	switch {
	case q.ServiceName != "" && q.OperationName != "":
		return h.operation(q.ServiceName, q.OperationName)
	case q.ServiceName != "":
		return h.service(q.ServiceName)
	}
	keys := make([]string, 0, len(q.Attributes))
	for k := range q.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v := q.Attributes[k]; len(v) <= maxIndexedValue {
			return h.attribute(k, v)
		}
	}
	return h.all()
}

func (s *Store) find(ctx context.Context, q storage.TraceQuery, keepTraces bool) ([]match, error) {
	if err := validateQuery(q); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = storage.DefaultLimit
	}
	now := time.Now()
	maxNs := unixNs(q.StartTimeMax)
	if q.StartTimeMax.IsZero() {
		maxNs = unixNs(now.Add(bucketWidth))
	}
	minNs := unixNs(q.StartTimeMin)
	hiBucket := bucketOf(maxNs)
	// Without a lower bound the walk stops at the oldest bucket retention keeps, and
	// never walks more buckets than retention spans.
	span := uint32(s.opts.Retention/bucketWidth) + 2
	loBucket := bucketOf(minNs)
	if q.StartTimeMin.IsZero() {
		loBucket = bucketOf(unixNs(now.Add(-s.opts.Retention - bucketWidth)))
	}
	if hiBucket > span && loBucket < hiBucket-span {
		loBucket = hiBucket - span
	}
	if loBucket > hiBucket {
		return []match{}, nil
	}
	field := drivingField(q)

	var matches []match
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if matches, err = s.walk(ctx, txn, q, field, limit, minNs, maxNs, loBucket, hiBucket); err != nil || !keepTraces {
			return err
		}
		// The page's traces, read in the same snapshot.
		var sum summary
		var parts []tracePart
		for i := range matches {
			matches[i].td = ptrace.NewTraces()
			found, err := readSummary(txn, matches[i].id, &sum)
			if err != nil {
				return err
			}
			if !found {
				continue
			}
			if parts, err = s.traceParts(ctx, txn, matches[i].id, &sum, parts[:0], true); err != nil {
				return err
			}
			matches[i].td = copyTrace(parts)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if matches == nil {
		matches = []match{}
	}
	return matches, nil
}

// walk reverse-iterates the driving field's postings bucket by bucket and verifies
// their traces until the page is full and nothing unseen can enter it.
func (s *Store) walk(ctx context.Context, txn *badger.Txn, q storage.TraceQuery, field uint64, limit int,
	minNs, maxNs uint64, loBucket, hiBucket uint32) ([]match, error) {
	var matches []match
	err := func() error {
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, PrefetchValues: false})
		defer it.Close()
		var (
			seen    = make(map[pcommon.TraceID]struct{})
			sum     summary
			val     []byte
			rows    []tableRow
			entries []postingEntry
			parts   []tracePart
		)
		prefix := make([]byte, 0, 13)
		seek := make([]byte, 0, postingKeyLen)
		// full reports whether the page is full of traces starting after ns: then no
		// trace starting at or before ns can enter it (ties go to the lower trace ID).
		full := func(ns uint64) bool { return len(matches) >= limit && matches[limit-1].start > ns }
		for b := hiBucket; ; b-- {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("search traces: %w", err)
			}
			prefix = appendPostingPrefix(prefix[:0], b, field)
			seek = append(append(seek[:0], prefix...), maxKeySuffix[:]...)
			for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
				item := it.Item()
				key := item.Key()
				if len(key) != postingKeyLen {
					return fmt.Errorf("posting key %x has length %d, want %d", key, len(key), postingKeyLen)
				}
				maxStart := binary.BigEndian.Uint64(key[13:21])
				if maxStart < minNs || full(maxStart) {
					return nil // every posting further down the walk is older
				}
				ref := blockRef{hash: binary.BigEndian.Uint64(key[21:29])}
				var err error
				if val, err = item.ValueCopy(val[:0]); err != nil {
					return fmt.Errorf("read posting %x: %w", key, err)
				}
				delta, rest, err := postingBucketDelta(val)
				if err != nil {
					return fmt.Errorf("read posting %x: %w", key, err)
				}
				ref.bucket = b + delta
				if rows, err = s.readTable(txn, ref, rows[:0]); err != nil {
					return err
				}
				if entries, err = decodeEntries(rest, rows, entries[:0]); err != nil {
					return fmt.Errorf("read posting %x: %w", key, err)
				}
				for _, e := range entries {
					if e.last < minNs || e.first > maxNs || full(e.first) {
						continue // no span of it carrying the field is in range, or it cannot enter the page
					}
					id := rows[e.row].id
					if _, dup := seen[id]; dup {
						continue
					}
					seen[id] = struct{}{}
					var ok bool
					parts, ok, err = s.verify(ctx, txn, id, q, &sum, parts[:0])
					if err != nil {
						return err
					}
					if !ok {
						continue
					}
					m := match{id: id, start: sum.minStart}
					i, _ := slices.BinarySearchFunc(matches, m, compareMatch)
					if i < limit {
						matches = slices.Insert(matches, i, m)
						if len(matches) > limit {
							matches = matches[:limit]
						}
					}
				}
			}
			if b == loBucket || b == 0 {
				return nil
			}
		}
	}()
	return matches, err
}

var maxKeySuffix = [postingKeyLen - 13]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// readTable appends the rows of a block's trace table to rows.
func (s *Store) readTable(txn *badger.Txn, ref blockRef, rows []tableRow) ([]tableRow, error) {
	var key [blockKeyLen]byte
	item, err := txn.Get(appendBlockKey(key[:0], prefixTable, ref))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return rows, nil // expired with its block
	}
	if err != nil {
		return rows, fmt.Errorf("read trace table %x: %w", key, err)
	}
	if err := item.Value(func(v []byte) error {
		rows, err = decodeTable(v, rows)
		return err
	}); err != nil {
		return rows, fmt.Errorf("read trace table %x: %w", key, err)
	}
	return rows, nil
}

// verify checks that one span of the trace satisfies the whole query; sum is left
// holding the trace's summary.
func (s *Store) verify(ctx context.Context, txn *badger.Txn, id pcommon.TraceID, q storage.TraceQuery, sum *summary, parts []tracePart) ([]tracePart, bool, error) {
	found, err := readSummary(txn, id, sum)
	if err != nil || !found {
		return parts, false, err
	}
	if q.ServiceName != "" && len(q.ServiceName) <= maxNameLen {
		if !slices.ContainsFunc(sum.services, func(c serviceCount) bool { return c.name == q.ServiceName }) {
			return parts, false, nil
		}
	}
	parts, err = s.traceParts(ctx, txn, id, sum, parts, true)
	if err != nil {
		return parts, false, err
	}
	return parts, traceMatches(parts, &q), nil
}

func traceMatches(parts []tracePart, q *storage.TraceQuery) bool {
	minNs, maxNs := unixNs(q.StartTimeMin), unixNs(q.StartTimeMax)
	for _, p := range parts {
		rss := p.blk.td.ResourceSpans()
		curRS := int32(-1)
		var (
			rs    ptrace.ResourceSpans
			svcOK bool
			curSS int32 = -1
			ss    ptrace.ScopeSpans
			spans ptrace.SpanSlice
		)
		for _, r := range p.refs {
			if r.rs != curRS {
				curRS, curSS = r.rs, -1
				rs = rss.At(int(r.rs))
				svcOK = q.ServiceName == "" || serviceOf(rs.Resource()) == q.ServiceName
			}
			if !svcOK {
				continue
			}
			if r.ss != curSS {
				curSS = r.ss
				ss = rs.ScopeSpans().At(int(r.ss))
				spans = ss.Spans()
			}
			sp := spans.At(int(r.sp))
			if q.OperationName != "" && sp.Name() != q.OperationName {
				continue
			}
			start, end := uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp())
			if (minNs > 0 && start < minNs) || (!q.StartTimeMax.IsZero() && start > maxNs) {
				continue
			}
			d := time.Duration(0)
			if end > start {
				d = time.Duration(end - start)
			}
			if (q.DurationMin > 0 && d < q.DurationMin) || (q.DurationMax > 0 && d > q.DurationMax) {
				continue
			}
			if attributesMatch(q.Attributes, sp, rs.Resource(), ss.Scope()) {
				return true
			}
		}
	}
	return false
}

func attributesMatch(want map[string]string, sp ptrace.Span, res pcommon.Resource, scope pcommon.InstrumentationScope) bool {
	for k, v := range want {
		if !hasAttr(sp.Attributes(), k, v) && !hasAttr(res.Attributes(), k, v) && !hasAttr(scope.Attributes(), k, v) &&
			!eventsHave(sp.Events(), k, v) && !linksHave(sp.Links(), k, v) {
			return false
		}
	}
	return true
}

func hasAttr(m pcommon.Map, k, want string) bool {
	v, ok := m.Get(k)
	if !ok {
		return false
	}
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str() == want
	}
	return v.AsString() == want
}

func eventsHave(evs ptrace.SpanEventSlice, k, v string) bool {
	for i := 0; i < evs.Len(); i++ {
		if hasAttr(evs.At(i).Attributes(), k, v) {
			return true
		}
	}
	return false
}

func linksHave(links ptrace.SpanLinkSlice, k, v string) bool {
	for i := 0; i < links.Len(); i++ {
		if hasAttr(links.At(i).Attributes(), k, v) {
			return true
		}
	}
	return false
}
