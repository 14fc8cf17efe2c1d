package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/spoortrace/spoor/storage"
)

var _ storage.TraceCounter = (*Store)(nil)

// exactEstimateMax is the most candidate traces EstimateTraces verifies one by one to
// count exactly; above it, the count is the index's upper bound.
const exactEstimateMax = 500

// EstimateTraces counts the entries of the postings a search of q would walk (the
// driving fields', in the buckets of its window, newer than its start): every matching
// trace has a span carrying a driving field in the window, so it is in at least one of
// them, and the sum is an upper bound. It overcounts traces whose spans carrying the
// field were written in several batches or fall in several hour buckets, traces the
// other conditions reject, and traces whose spans in a posting straddle the window's
// edges. When the sum is at most exactEstimateMax, the candidates are verified as a
// search verifies them, and the count is exact.
func (s *Store) EstimateTraces(ctx context.Context, q storage.TraceQuery) (storage.TraceEstimate, error) {
	q.Cursor, q.Limit, q.ScanLimit = "", 0, 0
	if err := validateQuery(&q); err != nil {
		return storage.TraceEstimate{}, err
	}
	now := time.Now()
	walkMax := unixNs(q.StartTimeMax)
	if q.StartTimeMax.IsZero() {
		walkMax = unixNs(now.Add(bucketWidth))
	}
	walkMin := unixNs(q.StartTimeMin)
	lo, hi := s.walkBuckets(&q, walkMin, walkMax, now)
	cur, old, oldBelow := s.drives(&q, false)
	fields := func(b uint32) []uint64 {
		if b < oldBelow {
			return old.fields
		}
		return cur.fields
	}
	upper, err := s.countPostingEntries(ctx, fields, walkMin, lo, hi)
	if err != nil {
		return storage.TraceEstimate{}, err
	}
	if upper > exactEstimateMax {
		return storage.TraceEstimate{Count: upper}, nil
	}
	if upper == 0 {
		return storage.TraceEstimate{Exact: true}, nil
	}
	q.Limit = exactEstimateMax + 1
	pg, err := s.find(ctx, q, false, false)
	if err != nil {
		return storage.TraceEstimate{}, err
	}
	if len(pg.matches) > exactEstimateMax {
		// Written since the count: count again, as an upper bound.
		upper, err = s.countPostingEntries(ctx, fields, walkMin, lo, hi)
		return storage.TraceEstimate{Count: max(upper, int64(len(pg.matches)))}, err
	}
	return storage.TraceEstimate{Count: int64(len(pg.matches)), Exact: true}, nil
}

// countPostingEntries sums the entries of the postings of bucket b's fields(b) in buckets
// lo..hi whose latest span carrying the field starts at or after walkMin. It reads the
// postings' headers only, never a trace table or a summary.
func (s *Store) countPostingEntries(ctx context.Context, fields func(b uint32) []uint64, walkMin uint64, lo, hi uint32) (int64, error) {
	if lo > hi {
		return 0, nil
	}
	txn, st := s.begin()
	defer txn.Discard()
	var (
		total int64
		ps    []posting
	)
	for b := hi; ; b-- {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("estimate traces: %w", err)
		}
		ps = s.idx.statePostings(st, b, fields(b), ps[:0])
		for _, sg := range st.segs[b] {
			if sg.maxStart < walkMin {
				continue
			}
			var err error
			if ps, err = s.segPostings(txn, sg, fields(b), ps); err != nil {
				return 0, err
			}
		}
		for _, p := range ps {
			if p.maxStart < walkMin {
				continue
			}
			_, rest, err := postingBucketDelta(p.val)
			if err != nil {
				return 0, fmt.Errorf("read posting of block %x/%x: %w", p.ref.bucket, p.ref.hash, err)
			}
			n, k := binary.Uvarint(rest)
			if k <= 0 {
				return 0, fmt.Errorf("read posting of block %x/%x: %w", p.ref.bucket, p.ref.hash, errBadPostingValue)
			}
			total += int64(n)
		}
		if b == lo || b == 0 {
			return total, nil
		}
	}
}
