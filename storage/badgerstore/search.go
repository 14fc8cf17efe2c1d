package badgerstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
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

// FindTraces returns the traces matching q, newest first. The traces are the ones
// read while verifying the match, in the same snapshot.
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
	td    ptrace.Traces
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
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, PrefetchValues: false})
		defer it.Close()
		seen := make(map[pcommon.TraceID]struct{})
		var sum summary
		prefix := make([]byte, 0, 13)
		seek := make([]byte, 0, indexKeyLen)
		for b := hiBucket; ; b-- {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("search traces: %w", err)
			}
			prefix = appendIndexPrefix(prefix[:0], b, field)
			seek = append(binary.BigEndian.AppendUint64(append(seek[:0], prefix...), maxNs), bytes.Repeat([]byte{0xff}, 16)...)
			for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
				item := it.Item()
				key := item.Key()
				startNs := binary.BigEndian.Uint64(key[13:21])
				if len(matches) >= limit && matches[limit-1].start > startNs {
					return nil // nothing further down can enter the page
				}
				if startNs < minNs {
					// Only the lowest bucket has such entries; the latest start in the
					// value says whether the entry reaches into the range.
					var latest uint64
					if err := item.Value(func(v []byte) error {
						if len(v) == 8 {
							latest = binary.BigEndian.Uint64(v)
						}
						return nil
					}); err != nil {
						return fmt.Errorf("read index entry: %w", err)
					}
					if latest < minNs {
						continue
					}
				}
				var id pcommon.TraceID
				copy(id[:], key[21:37])
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
				m, ok, err := s.verify(ctx, txn, id, q, &sum, keepTraces)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				i, _ := slices.BinarySearchFunc(matches, m, compareMatch)
				if i < limit {
					matches = slices.Insert(matches, i, m)
					if len(matches) > limit {
						matches = matches[:limit]
					}
				}
			}
			if b == loBucket || b == 0 {
				return nil
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if matches == nil {
		matches = []match{}
	}
	return matches, nil
}

// verify loads the trace and checks that one span satisfies the whole query.
func (s *Store) verify(ctx context.Context, txn *badger.Txn, id pcommon.TraceID, q storage.TraceQuery, sum *summary, keep bool) (match, bool, error) {
	found, err := readSummary(txn, id, sum)
	if err != nil || !found {
		return match{}, false, err
	}
	if q.ServiceName != "" && len(q.ServiceName) <= maxNameLen {
		if !slices.ContainsFunc(sum.services, func(c serviceCount) bool { return c.name == q.ServiceName }) {
			return match{}, false, nil
		}
	}
	td, found, err := s.loadChunks(ctx, txn, id, sum)
	if err != nil || !found {
		return match{}, false, err
	}
	if !traceMatches(td, &q) {
		return match{}, false, nil
	}
	m := match{id: id, start: sum.minStart}
	if keep {
		m.td = td
	}
	return m, true, nil
}

func traceMatches(td ptrace.Traces, q *storage.TraceQuery) bool {
	minNs, maxNs := unixNs(q.StartTimeMin), unixNs(q.StartTimeMax)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		if q.ServiceName != "" && serviceOf(rs.Resource()) != q.ServiceName {
			continue
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
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
