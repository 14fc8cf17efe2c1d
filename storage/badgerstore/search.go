package badgerstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

var (
	_ storage.Searcher      = (*Store)(nil)
	_ storage.SummaryReader = (*Store)(nil)
)

// FindTraceIDs returns the IDs of the traces matching q, newest first.
func (s *Store) FindTraceIDs(ctx context.Context, q storage.TraceQuery) ([]pcommon.TraceID, error) {
	q.ScanLimit = 0
	pg, err := s.find(ctx, q, false, false)
	if err != nil {
		return nil, err
	}
	ids := make([]pcommon.TraceID, len(pg.matches))
	for i, m := range pg.matches {
		ids[i] = m.id
	}
	return ids, nil
}

// FindTraces returns the traces matching q, newest first.
func (s *Store) FindTraces(ctx context.Context, q storage.TraceQuery) ([]ptrace.Traces, error) {
	q.ScanLimit = 0
	pg, err := s.find(ctx, q, false, true)
	if err != nil {
		return nil, err
	}
	out := make([]ptrace.Traces, len(pg.matches))
	for i, m := range pg.matches {
		out[i] = m.td
	}
	return out, nil
}

// SearchTraces returns one page of the traces matching q with their summaries (and
// spans, with storage.WithSpans), and the cursor of the next page.
func (s *Store) SearchTraces(ctx context.Context, q storage.TraceQuery, depth storage.SearchDepth) (storage.SearchResult, error) {
	pg, err := s.find(ctx, q, true, depth == storage.WithSpans)
	if err != nil {
		return storage.SearchResult{}, err
	}
	res := storage.SearchResult{Summaries: make([]storage.TraceSummary, len(pg.matches)), NextCursor: pg.next}
	if depth == storage.WithSpans {
		res.Traces = make([]ptrace.Traces, len(pg.matches))
	}
	for i, m := range pg.matches {
		res.Summaries[i] = m.summary
		if depth == storage.WithSpans {
			res.Traces[i] = m.td
		}
	}
	return res, nil
}

// GetTraceSummary returns the merged summary of a stored trace.
func (s *Store) GetTraceSummary(_ context.Context, traceID pcommon.TraceID) (storage.TraceSummary, error) {
	txn, st := s.begin()
	defer txn.Discard()
	var sum summary
	found, err := s.traceSummary(txn, st, traceID, &sum, math.MaxUint64)
	if err != nil {
		return storage.TraceSummary{}, err
	}
	if !found {
		return storage.TraceSummary{}, storage.ErrTraceNotFound
	}
	return exportSummary(traceID, &sum), nil
}

func exportSummary(id pcommon.TraceID, sum *summary) storage.TraceSummary {
	ts := storage.TraceSummary{
		TraceID:    id,
		HasRoot:    sum.hasRoot,
		Start:      time.Unix(0, int64(sum.minStart)).UTC(),
		Duration:   time.Duration(sub0(sum.maxEnd, sum.minStart)),
		SpanCount:  int(sum.spans),
		ErrorCount: int(sum.errors),
		Services:   make([]storage.ServiceSummary, len(sum.services)),
	}
	if sum.hasRoot {
		ts.RootService, ts.RootOperation = sum.rootService, sum.rootName
	}
	for i, sc := range sum.services {
		ts.Services[i] = storage.ServiceSummary{Name: sc.name, SpanCount: int(sc.spans), ErrorCount: int(sc.errors)}
	}
	return ts
}

type match struct {
	id      pcommon.TraceID
	start   uint64
	sum     *summary             // as verify read it, in the search's snapshot
	summary storage.TraceSummary // set for SearchTraces
	td      ptrace.Traces        // set when spans are loaded
}

// cloneSummary copies a summary out of the scratch the walk reuses.
func cloneSummary(s *summary) *summary {
	c := *s
	c.blocks, c.services = slices.Clone(s.blocks), slices.Clone(s.services)
	return &c
}

// compareMatch orders newest first, then by trace ID ascending.
func compareMatch(a, b match) int {
	if c := cmp.Compare(b.start, a.start); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// validateQuery refuses queries no trace can be asked for, and writes Status Error as
// ErrorsOnly, its other name.
func validateQuery(q *storage.TraceQuery) error {
	switch {
	case q.Status > storage.StatusUnset:
		return &storage.InvalidInputError{Reason: fmt.Sprintf("unknown status condition %d", q.Status)}
	case q.Status == storage.StatusError:
		q.ErrorsOnly, q.Status = true, storage.AnyStatus
	case q.Status != storage.AnyStatus && q.ErrorsOnly:
		return &storage.InvalidInputError{Reason: "errors only and a status other than error: no span has both"}
	}
	if !q.StartTimeMin.IsZero() && !q.StartTimeMax.IsZero() && q.StartTimeMax.Before(q.StartTimeMin) {
		return &storage.InvalidInputError{Reason: fmt.Sprintf("start time max %s is before min %s", q.StartTimeMax, q.StartTimeMin)}
	}
	if q.DurationMin < 0 || q.DurationMax < 0 {
		return &storage.InvalidInputError{Reason: "negative duration bound"}
	}
	if q.DurationMax > 0 && q.DurationMax < q.DurationMin {
		return &storage.InvalidInputError{Reason: fmt.Sprintf("duration max %s is less than min %s", q.DurationMax, q.DurationMin)}
	}
	if q.TraceDurationMin < 0 || q.TraceDurationMax < 0 {
		return &storage.InvalidInputError{Reason: "negative trace duration bound"}
	}
	if q.TraceDurationMax > 0 && q.TraceDurationMax < q.TraceDurationMin {
		return &storage.InvalidInputError{Reason: fmt.Sprintf("trace duration max %s is less than min %s", q.TraceDurationMax, q.TraceDurationMin)}
	}
	for i, f := range q.AttributeFilters {
		if f.Key == "" {
			return &storage.InvalidInputError{Reason: fmt.Sprintf("attribute filter %d has no key", i)}
		}
		if f.Match != nil && len(f.Values) > 0 {
			return &storage.InvalidInputError{Reason: fmt.Sprintf("attribute filter %d on %q has both values and a regular expression", i, f.Key)}
		}
	}
	return nil
}

func unixNs(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// drivingFields picks the index to walk: the most selective field the query names, or
// the union of fields walked merged, newest posting first — the values of an OR filter,
// or an attribute under every service when the query names none (attribute fields are
// scoped by service). exact reports that the walked postings alone certify every
// span-level condition on names and attributes, so that no span needs reading for them;
// statusDriven, that the fields are those of spans with the status the query asks for
// (error, or OK when statusIndexed: the buckets searched carry status OK fields).
func (s *Store) drivingFields(q *storage.TraceQuery, statusIndexed bool) (fields []uint64, exact, statusDriven bool) {
	var h fieldHasher
	conditions := len(q.Attributes) + len(q.AttributeFilters)
	if q.OperationName != "" {
		conditions++
	}
	services := []string{q.ServiceName}
	if q.ServiceName == "" {
		services = s.catalogServices()
	}
	// An attribute equality first: searches name attributes to find rare things (an
	// order, a user), and the field is scoped by the service anyway.
	keys := make([]string, 0, len(q.Attributes))
	for k := range q.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// The fields of attribute k = v under services: the resource attribute service.name
	// is not indexed (prepareResources), and every span of service v carries it, so
	// its service field stands in for it (alongside the attribute's own fields, for a
	// span or scope attribute of that name, and stores written before).
	attrFields := func(dst []uint64, k, v string) []uint64 {
		for _, svc := range services {
			dst = append(dst, h.attribute(svc, k, v))
		}
		if k == serviceNameKey && v != "" && (q.ServiceName == "" || q.ServiceName == v) {
			dst = append(dst, h.service(v))
		}
		return dst
	}
	for _, k := range keys {
		if v := q.Attributes[k]; len(v) <= maxIndexedValue {
			return attrFields(fields, k, v), conditions == 1, false
		}
	}
	var union []uint64
	for _, f := range q.AttributeFilters {
		if f.Negate || len(f.Values) == 0 || slices.ContainsFunc(f.Values, func(v string) bool { return len(v) > maxIndexedValue }) {
			continue // NOT filters, presence tests and unindexed values are verified only
		}
		if union == nil || len(f.Values)*len(services) < len(union) {
			union = union[:0]
			for _, v := range f.Values {
				for _, fh := range attrFields(nil, f.Key, v) {
					if !slices.Contains(union, fh) {
						union = append(union, fh)
					}
				}
			}
		}
	}
	if union != nil {
		return union, conditions == 1, false
	}
	if q.ErrorsOnly {
		// Spans with status Error of the service (of every service without one): a few
		// percent of spans, and their postings' bounds are the failed spans' starts.
		for _, svc := range services {
			fields = append(fields, h.errors(svc))
		}
		return fields, conditions == 0, true
	}
	if q.Status == storage.StatusOK && statusIndexed {
		// Likewise spans with status OK: none where SDKs leave the status unset, and
		// where instrumentation sets it, often only the server spans.
		for _, svc := range services {
			fields = append(fields, h.statusOK(svc))
		}
		return fields, conditions == 0, true
	}
	switch {
	case q.ServiceName != "" && q.OperationName != "":
		return []uint64{h.operation(q.ServiceName, q.OperationName)}, conditions == 1, false
	case q.ServiceName != "":
		return []uint64{h.service(q.ServiceName)}, conditions == 0, false
	}
	return []uint64{h.all()}, conditions == 0, false
}

// drive is how a search walks a bucket: the fields whose postings it merges, and whether
// candidates must be checked against their spans.
type drive struct {
	fields    []uint64
	needSpans bool
}

// drives returns how a search of q walks buckets from oldBelow up, and how it walks
// those below, written before status OK fields existed (Store.statusFrom): the same,
// unless q asks for status OK.
func (s *Store) drives(q *storage.TraceQuery, windowed bool) (cur, old drive, oldBelow uint32) {
	named := q.OperationName != "" || len(q.Attributes) > 0 || len(q.AttributeFilters) > 0
	mk := func(statusIndexed bool) drive {
		fields, exact, statusDriven := s.drivingFields(q, statusIndexed)
		// Status OK in old buckets has no index: the spans decide. Status Unset has none
		// either, but the summaries count it (verify), unless it must hold on a span
		// with a name or attribute the query names: then the spans decide.
		return drive{fields: fields, needSpans: !exact || q.DurationMin > 0 || q.DurationMax > 0 || len(q.ServiceName) > maxNameLen ||
			(q.ErrorsOnly && !statusDriven && (windowed || named)) || (q.Status == storage.StatusOK && !statusDriven) ||
			(q.Status == storage.StatusUnset && named)}
	}
	cur = mk(true)
	if q.Status != storage.StatusOK || s.statusFrom == 0 {
		return cur, cur, 0
	}
	return cur, mk(false), s.statusFrom
}

// driveOf is the drive of bucket b.
func (p *plan) driveOf(b uint32) drive {
	if b < p.oldBelow {
		return p.oldDrive
	}
	return p.drive
}

// catalogServices is every cataloged service, and the empty name of spans without one.
func (s *Store) catalogServices() []string {
	s.catalogMu.RLock()
	defer s.catalogMu.RUnlock()
	out := make([]string, 0, len(s.services)+1)
	out = append(out, "")
	for name := range s.services {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// plan is a validated query with its derived bounds.
type plan struct {
	q     *storage.TraceQuery
	limit int
	// walkMin/walkMax bound the walk over span starts; spanMin/spanMax are the query's
	// own span start window (0 and MaxUint64 when open), windowed whether it has one.
	walkMin, walkMax uint64
	spanMin, spanMax uint64
	windowed         bool
	// fields and needSpans are those of the bucket walked (drive, or below oldBelow,
	// oldDrive: see drives).
	fields []uint64
	// needSpans is set when a span-level condition cannot be decided from summaries and
	// posting bounds alone.
	needSpans bool
	drive     drive
	oldDrive  drive
	oldBelow  uint32
	// keepSums says whether the page's summaries are wanted (matches keep verify's).
	keepSums bool
	// asOfSeq is the index watermark of the snapshot searched (FORMAT.md: Search,
	// cursors): postings, and summary fragments, of later blocks are ignored. after, when
	// set, is the cursor's position: only matches ordered after it count.
	asOfSeq uint64
	after   *match
	st      *indexState
	// stopped is set when the walk ran out of q.ScanLimit with the page not full;
	// stoppedAt is then the maxStartNs of the posting it stopped in: every trace it did
	// not verify starts at or before it.
	stopped   bool
	stoppedAt uint64
	// visit, when set, gets each candidate's ID instead of its verification (which
	// ScanTraceIDs does not need), once per posting entry, and stops the walk by
	// returning false.
	visit func(pcommon.TraceID) bool
}

type page struct {
	matches []match
	next    string
}

// ScanTraceIDs implements storage.TraceIDScanner: the walk of an unfiltered search from
// now down to since, over every trace's postings (field type 0x00) newest first, that
// hands each trace ID of the blocks' trace tables to fn instead of verifying it against
// its summary. A trace table serves a hundred traces; verifying cost a summary read
// each, which made Zipkin's 64-bit fallback scan of 10,000 traces take 45 ms. A trace
// whose spans came in several batches is named once per batch.
func (s *Store) ScanTraceIDs(ctx context.Context, since time.Time, fn func(pcommon.TraceID) bool) error {
	q := storage.TraceQuery{StartTimeMin: since}
	now := time.Now()
	p := plan{q: &q, limit: 1, asOfSeq: math.MaxUint64, spanMax: math.MaxUint64, visit: fn}
	p.walkMax = unixNs(now.Add(bucketWidth))
	p.walkMin, p.spanMin = unixNs(since), unixNs(since)
	p.windowed = p.spanMin > 0
	p.drive, p.oldDrive, p.oldBelow = s.drives(&q, p.windowed)
	loBucket, hiBucket := s.walkBuckets(&q, p.walkMin, p.walkMax, now)
	txn, st := s.begin()
	defer txn.Discard()
	p.st, p.asOfSeq = st, st.seq
	if loBucket > hiBucket {
		return nil
	}
	_, err := s.walk(ctx, txn, st, &p, loBucket, hiBucket)
	return err
}

func (s *Store) find(ctx context.Context, q storage.TraceQuery, summaries, keepTraces bool) (page, error) {
	if err := validateQuery(&q); err != nil {
		return page{}, err
	}
	p := plan{q: &q, limit: q.Limit, asOfSeq: math.MaxUint64, spanMax: math.MaxUint64, keepSums: summaries || keepTraces}
	if p.limit <= 0 {
		p.limit = storage.DefaultLimit
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return page{}, err
		}
		p.after, p.asOfSeq = &match{id: c.id, start: c.start}, c.seq
	}
	now := time.Now()
	p.walkMax = unixNs(q.StartTimeMax)
	if q.StartTimeMax.IsZero() {
		p.walkMax = unixNs(now.Add(bucketWidth))
	} else {
		p.spanMax = p.walkMax
	}
	p.walkMin, p.spanMin = unixNs(q.StartTimeMin), unixNs(q.StartTimeMin)
	p.windowed = p.spanMin > 0 || !q.StartTimeMax.IsZero()
	p.drive, p.oldDrive, p.oldBelow = s.drives(&q, p.windowed)
	loBucket, hiBucket := s.walkBuckets(&q, p.walkMin, p.walkMax, now)

	var pg page
	txn, st := s.begin()
	defer txn.Discard()
	p.st = st
	err := func() error {
		if p.after == nil {
			// The first page fixes the snapshot every later page reads.
			p.asOfSeq = st.seq
		}
		if loBucket <= hiBucket {
			var err error
			if pg.matches, err = s.walk(ctx, txn, st, &p, loBucket, hiBucket); err != nil {
				return err
			}
		}
		if p.stopped {
			// Only the matches that start after every unverified trace have their place;
			// the next page continues after the last of them (or after stoppedAt), and
			// verifies the others again.
			n := 0
			for n < len(pg.matches) && pg.matches[n].start > p.stoppedAt {
				n++
			}
			pg.matches = pg.matches[:n]
			c := cursor{start: p.stoppedAt + 1, seq: p.asOfSeq}
			if n > 0 {
				c.start, c.id = pg.matches[n-1].start, pg.matches[n-1].id
			}
			pg.next = encodeCursor(c)
		} else if len(pg.matches) == p.limit {
			last := pg.matches[len(pg.matches)-1]
			pg.next = encodeCursor(cursor{start: last.start, id: last.id, seq: p.asOfSeq})
		}
		if !summaries && !keepTraces {
			return nil
		}
		// The page's summaries and traces, read in the same snapshot (by verify, which
		// kept them).
		sums := make([]summary, len(pg.matches))
		found := make([]bool, len(pg.matches))
		for i := range pg.matches {
			m := &pg.matches[i]
			if m.sum != nil {
				sums[i], found[i] = *m.sum, true
			} else {
				var err error
				if found[i], err = s.traceSummary(txn, st, m.id, &sums[i], p.asOfSeq); err != nil {
					return err
				}
			}
			if found[i] && summaries {
				m.summary = exportSummary(m.id, &sums[i])
			}
		}
		if keepTraces {
			return s.readPage(ctx, txn, pg.matches, sums, found)
		}
		return nil
	}()
	if err != nil {
		return page{}, err
	}
	if pg.matches == nil {
		pg.matches = []match{}
	}
	return pg, nil
}

// walk merges the driving fields' postings — from the index head in memory and the
// bucket's segments — bucket by bucket, newest posting first, and verifies their traces
// until the page is full and nothing unseen can enter it. A segment's pages are read
// only once the walk reaches its newest posting.
func (s *Store) walk(ctx context.Context, txn *badger.Txn, st *indexState, p *plan, loBucket, hiBucket uint32) ([]match, error) {
	var matches []match
	var (
		// scanned counts the traces verified against their spans; spent says it reached
		// ScanLimit; lastMax is the maxStartNs of the posting walked last.
		scanned int
		spent   bool
		lastMax uint64
		seen    = make(map[pcommon.TraceID]struct{})
		sum     summary
		rows    []tableRow
		entries []postingEntry
		parts   []tracePart
		h       postingHeap
	)
	// full reports whether the page is full of traces starting after ns: then no trace
	// starting at or before ns can enter it (ties go to the lower trace ID).
	full := func(ns uint64) bool { return len(matches) >= p.limit && matches[p.limit-1].start > ns }
	for b := hiBucket; ; b-- {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("search traces: %w", err)
		}
		d := p.driveOf(b)
		p.fields, p.needSpans = d.fields, d.needSpans
		h = postingHeap(s.idx.statePostings(st, b, p.fields, h[:0]))
		h.init()
		segs := st.segs[b]
		next := 0
		for {
			for next < len(segs) && (len(h) == 0 || segs[next].maxStart >= h[0].maxStart) {
				n := len(h)
				loaded, err := s.segPostings(txn, segs[next], p.fields, h)
				if err != nil {
					return nil, err
				}
				h = loaded
				for i := n; i < len(h); i++ {
					h.up(i)
				}
				next++
			}
			if len(h) == 0 {
				break
			}
			if spent && h[0].maxStart < lastMax && !full(h[0].maxStart) && h[0].maxStart >= p.walkMin {
				// Out of ScanLimit, between two postings of different maxStartNs: every
				// trace not verified starts at or before the next one's.
				p.stopped, p.stoppedAt = true, h[0].maxStart
				return matches, nil
			}
			top := h.pop()
			if top.maxStart < p.walkMin || full(top.maxStart) {
				return matches, nil // every posting further down the walk is older
			}
			lastMax = top.maxStart
			// Verifications a later page repeats (traces of postings newer than its
			// cursor, which an earlier page verified) do not count against ScanLimit:
			// each page gets past its cursor.
			counts := p.after == nil || top.maxStart < p.after.start
			if top.seq > p.asOfSeq {
				continue // written after the cursor's snapshot
			}
			_, rest, err := postingBucketDelta(top.val)
			if err != nil {
				return nil, fmt.Errorf("read posting of block %x/%x: %w", top.ref.bucket, top.ref.hash, err)
			}
			if rows, err = s.readTable(txn, top.ref, rows[:0]); err != nil {
				return nil, err
			}
			if len(rows) == 0 {
				continue // the block expired
			}
			if entries, err = decodeEntries(rest, rows, entries[:0]); err != nil {
				return nil, fmt.Errorf("read posting of block %x/%x: %w", top.ref.bucket, top.ref.hash, err)
			}
			for _, e := range entries {
				if e.last < p.walkMin || e.first > p.walkMax || full(e.first) {
					continue // no span of it carrying the field is in range, or it cannot enter the page
				}
				id := rows[e.row].id
				if p.visit != nil {
					// No seen set: on a 100,000-trace scan it was half the cost.
					if !p.visit(id) {
						return matches, nil
					}
					continue
				}
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
				var ok bool
				parts, ok, err = s.verify(ctx, txn, id, p, top.seq, e, &sum, parts[:0])
				if err != nil {
					return nil, err
				}
				if len(parts) > 0 && counts {
					scanned++
					spent = p.q.ScanLimit > 0 && scanned >= p.q.ScanLimit
				}
				if ok {
					m := match{id: id, start: sum.minStart}
					i, _ := slices.BinarySearchFunc(matches, m, compareMatch)
					if i < p.limit {
						if p.keepSums {
							m.sum = cloneSummary(&sum)
						}
						matches = slices.Insert(matches, i, m)
						if len(matches) > p.limit {
							matches = matches[:p.limit]
						}
					}
				}
			}
		}
		if b == loBucket || b == 0 {
			return matches, nil
		}
	}
}

// walkBuckets is the buckets a search of q walks, from walkMax's down to walkMin's.
// Without a lower bound the walk stops at the oldest bucket retention keeps, and never
// walks more buckets than retention spans.
func (s *Store) walkBuckets(q *storage.TraceQuery, walkMin, walkMax uint64, now time.Time) (lo, hi uint32) {
	hi = bucketOf(walkMax)
	span := uint32(s.opts.Retention/bucketWidth) + 2
	lo = bucketOf(walkMin)
	if q.StartTimeMin.IsZero() {
		lo = bucketOf(unixNs(now.Add(-s.opts.Retention - bucketWidth)))
	}
	if hi > span && lo < hi-span {
		lo = hi - span
	}
	return lo, hi
}

// postingHeap is a binary heap of postings, newest (comparePosting) on top.
type postingHeap []posting

func (h postingHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h postingHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if comparePosting(h[i], h[parent]) >= 0 {
			return
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (h postingHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		best := l
		if r := l + 1; r < len(h) && comparePosting(h[r], h[l]) < 0 {
			best = r
		}
		if comparePosting(h[best], h[i]) >= 0 {
			return
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
}

func (h *postingHeap) pop() posting {
	old := *h
	top := old[0]
	n := len(old) - 1
	old[0] = old[n]
	old[n] = posting{}
	*h = old[:n]
	if n > 0 {
		h.down(0)
	}
	return top
}

// readTable appends the rows of a block's trace table to rows.
func (s *Store) readTable(txn *badger.Txn, ref blockRef, rows []tableRow) ([]tableRow, error) {
	var key [blockKeyLen]byte
	start := len(rows)
	_, err := s.readValue(txn, appendBlockKey(key[:0], prefixTable, ref), func(v []byte) error {
		var err error
		rows, err = decodeTable(v, rows[:start])
		return err
	})
	if err != nil {
		return rows[:start], fmt.Errorf("read trace table %x: %w", key, err)
	}
	return rows, nil // no rows: expired with its block
}

// verify decides whether the trace matches: trace-level conditions and the cursor from
// its summary, span-level ones from the summary and the posting entry e (of block seq)
// when they suffice, else from its spans. sum is left holding the trace's summary.
func (s *Store) verify(ctx context.Context, txn *badger.Txn, id pcommon.TraceID, p *plan, seq uint64, e postingEntry, sum *summary, parts []tracePart) ([]tracePart, bool, error) {
	found, err := s.traceSummary(txn, p.st, id, sum, p.asOfSeq)
	if err != nil || !found {
		return parts, false, err
	}
	if p.after != nil && compareMatch(match{id: id, start: sum.minStart}, *p.after) <= 0 {
		return parts, false, nil // returned by an earlier page
	}
	q := p.q
	d := time.Duration(sub0(sum.maxEnd, sum.minStart))
	if (q.TraceDurationMin > 0 && d < q.TraceDurationMin) || (q.TraceDurationMax > 0 && d > q.TraceDurationMax) {
		return parts, false, nil
	}
	if (q.TraceErrorsOnly || q.ErrorsOnly) && sum.errors == 0 {
		return parts, false, nil
	}
	var svc *serviceCount
	if q.ServiceName != "" && len(q.ServiceName) <= maxNameLen {
		i := slices.IndexFunc(sum.services, func(c serviceCount) bool { return c.name == q.ServiceName })
		if i < 0 {
			return parts, false, nil
		}
		svc = &sum.services[i]
	}
	if q.ErrorsOnly && svc != nil && svc.errors == 0 {
		return parts, false, nil // no span of the service failed: no need to read any
	}
	if q.Status != storage.AnyStatus && ((svc != nil && svc.errors >= svc.spans) || (svc == nil && sum.errors >= sum.spans)) {
		return parts, false, nil // every span failed: none is ok or unset
	}
	unset, unsetKnown := sum.unset(svc)
	if q.Status == storage.StatusUnset && unsetKnown && unset == 0 {
		return parts, false, nil // every span failed or is OK
	}
	// A posting of a block the trace's tombstone hides certifies nothing: spans written
	// since (the trace came back) decide.
	if !p.needSpans && seq > s.deleted.get(id) {
		// Only the service, the window and ErrorsOnly (without a window or a named
		// condition) remain, and the driving field is the service, every trace, the
		// status asked for, or the one named condition itself under the service: e's
		// row holds a span that satisfies every span condition but the window.
		if q.ErrorsOnly && svc != nil && svc.errors == 0 {
			return parts, false, nil
		}
		if q.Status == storage.StatusUnset {
			// The summary counts the trace's (the service's) Unset spans: some, and the
			// whole trace inside the window, decide it; else (a trace straddling a
			// window edge, or fragments of an older store, which do not count OK
			// spans) its spans do.
			if unsetKnown && (!p.windowed || (sum.minStart >= p.spanMin && sum.maxEnd <= p.spanMax)) {
				return parts, true, nil
			}
		} else if !p.windowed || (e.first >= p.spanMin && e.last <= p.spanMax) {
			// e's bounds are the trace's spans in the block (FORMAT.md): all inside the
			// window decides it; a trace straddling a window edge reads its spans.
			return parts, true, nil
		}
	}
	parts, err = s.traceParts(ctx, txn, id, sum, parts, true)
	if err != nil {
		return parts, false, err
	}
	return parts, traceMatches(parts, q), nil
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
			if q.ErrorsOnly && sp.Status().Code() != ptrace.StatusCodeError {
				continue
			}
			if !statusHolds(q.Status, sp.Status().Code()) {
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
			if attributesMatch(q.Attributes, sp, rs.Resource(), ss.Scope()) && filtersHold(q.AttributeFilters, sp, rs.Resource(), ss.Scope()) {
				return true
			}
		}
	}
	return false
}

// statusHolds reports whether a span's status code satisfies the status condition
// (ErrorsOnly aside).
func statusHolds(c storage.StatusCondition, code ptrace.StatusCode) bool {
	switch c {
	case storage.StatusOK:
		return code == ptrace.StatusCodeOk
	case storage.StatusUnset:
		return code == ptrace.StatusCodeUnset
	case storage.StatusError:
		return code == ptrace.StatusCodeError
	}
	return true
}

func attributesMatch(want map[string]string, sp ptrace.Span, res pcommon.Resource, scope pcommon.InstrumentationScope) bool {
	for k, v := range want {
		if !anywhere(sp, res, scope, func(m pcommon.Map) bool { return hasAttr(m, k, v) }) {
			return false
		}
	}
	return true
}

// filtersHold reports whether the span satisfies every filter (storage.AttributeFilter).
func filtersHold(fs []storage.AttributeFilter, sp ptrace.Span, res pcommon.Resource, scope pcommon.InstrumentationScope) bool {
	for i := range fs {
		f := &fs[i]
		found := anywhere(sp, res, scope, func(m pcommon.Map) bool {
			v, ok := m.Get(f.Key)
			if !ok {
				return false
			}
			if len(f.Values) == 0 && f.Match == nil {
				return true
			}
			s := v.AsString()
			if v.Type() == pcommon.ValueTypeStr {
				s = v.Str()
			}
			if f.Match != nil {
				return f.Match.MatchString(s)
			}
			return slices.Contains(f.Values, s)
		})
		if found == f.Negate {
			return false
		}
	}
	return true
}

// anywhere reports whether has holds for the attributes of the span, its resource, its
// scope, one of its events or one of its links.
func anywhere(sp ptrace.Span, res pcommon.Resource, scope pcommon.InstrumentationScope, has func(pcommon.Map) bool) bool {
	if has(sp.Attributes()) || has(res.Attributes()) || has(scope.Attributes()) {
		return true
	}
	for i := 0; i < sp.Events().Len(); i++ {
		if has(sp.Events().At(i).Attributes()) {
			return true
		}
	}
	for i := 0; i < sp.Links().Len(); i++ {
		if has(sp.Links().At(i).Attributes()) {
			return true
		}
	}
	return false
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
