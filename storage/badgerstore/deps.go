package badgerstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/internal/spanmatch"
	"github.com/spoortrace/spoor/storage"
)

// Service dependencies (storage/FORMAT.md, "Dependency counts"): edges are counted at
// write time by matching each span to its parent span in memory, kept as totals per
// hour bucket in memory, and written as blind delta keys by a periodic flush.

var _ storage.DependencyReader = (*Store)(nil)

const (
	defaultDependencyWait          = 15 * time.Second
	defaultDependencyFlushInterval = 10 * time.Second
	defaultDependencySpans         = 1 << 18
	defaultDependencyPending       = 1 << 17
	// maxDepNames bounds the interned service and peer names; maxDepEdges the
	// (bucket, parent, child) totals kept in memory. Past them, calls are not counted
	// (Stats.DependencyDropped): peer.service values are whatever clients send.
	maxDepNames = 1 << 16
	maxDepEdges = 1 << 20
	depKeyLen   = 1 + 4 + 8
)

// depRec is one span of a batch, gathered by planFields without allocating. peer
// points into the caller's spans and is cleared with the scratch.
type depRec struct {
	key, parent uint64 // spanmatch.Key of the span and of its parent (0: root)
	bucket      uint32
	res         int32
	kind        uint8 // ptrace.SpanKind
	flags       uint8 // spanmatch.Error
	peer        string
}

// depSpan is the store's part of a remembered span.
type depSpan struct {
	peer, bucket uint32
}

// pendingChild counts children of one service and bucket waiting for their parent.
type pendingChild struct {
	svc, bucket   uint32
	calls, errors uint32
}

type edgeKey struct {
	bucket, parent, child uint32
}

type edgeCounts struct{ calls, errors uint64 }

type depTracker struct {
	mu sync.Mutex

	names   []string // by id; id 0 is "no service" and never makes an edge
	nameIDs map[string]uint32

	// m matches spans to their parent span.
	m       *spanmatch.Matcher[depSpan, pendingChild]
	touched uint64 // what m.Touch read; kept so that the reads are made

	totals, unflushed      map[edgeKey]edgeCounts
	spare                  map[edgeKey]edgeCounts
	deltaKeys              map[uint32]int // bucket → delta keys on disk
	lastFlushID            uint64         // guarded by flushMu
	flushMu                sync.Mutex     // serializes flushes and compactions
	matched, unmatched     atomic.Int64
	peerCalls, dropped     atomic.Int64
	flushes, flushFailures atomic.Int64

	stop chan struct{}
	done chan struct{}
}

func (d *depTracker) init(o *Options) {
	d.nameIDs = map[string]uint32{}
	d.names = []string{""}
	d.m = spanmatch.New(o.DependencyWait, o.DependencySpans, o.DependencyPending, time.Now(),
		spanmatch.Hooks[depSpan, pendingChild]{
			Link:       d.link,
			Unanswered: d.peerCall,
			Orphans:    func(n int64) { d.unmatched.Add(n) },
			Weight:     func(c pendingChild) int64 { return int64(c.calls) },
			Join: func(w, c pendingChild) (pendingChild, bool) {
				if w.svc != c.svc || w.bucket != c.bucket {
					return w, false
				}
				w.calls += c.calls
				w.errors += c.errors
				return w, true
			},
		})
	d.totals, d.unflushed, d.spare = map[edgeKey]edgeCounts{}, map[edgeKey]edgeCounts{}, map[edgeKey]edgeCounts{}
	d.deltaKeys = map[uint32]int{}
}

// addDepRec notes one span of the batch for observe.
func (w *writeScratch) addDepRec(sp ptrace.Span, id pcommon.TraceID, res int32, bucket uint32) {
	r := depRec{key: spanmatch.Key(id, sp.SpanID()), bucket: bucket, res: res, kind: uint8(sp.Kind())}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		r.parent = spanmatch.Key(id, p)
	}
	if k := sp.Kind(); k == ptrace.SpanKindClient || k == ptrace.SpanKindProducer {
		r.peer = peerService(sp.Attributes())
	}
	if sp.Status().Code() == ptrace.StatusCodeError {
		r.flags |= spanmatch.Error
	}
	w.deps = append(w.deps, r)
}

// peerService is the uninstrumented peer a client span names: peer.service, or
// service.peer.name (what the contrib Zipkin receiver makes of remoteEndpoint).
func peerService(m pcommon.Map) string {
	for _, k := range [...]string{"peer.service", "service.peer.name"} {
		if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
			return v.Str()
		}
	}
	return ""
}

// intern returns the id of name, 0 when it is empty, too long, or past the bound.
// Called with mu held; name may point into the caller's spans.
func (d *depTracker) intern(name string) uint32 {
	if name == "" || len(name) > maxNameLen {
		return 0
	}
	if id, ok := d.nameIDs[name]; ok {
		return id
	}
	if len(d.names) >= maxDepNames {
		d.dropped.Add(1)
		return 0
	}
	name = clone(name)
	id := uint32(len(d.names))
	d.names = append(d.names, name)
	d.nameIDs[name] = id
	return id
}

// observe counts the dependency calls of a committed batch. It runs once per block,
// after its commit, so that an identical retry (a deduplicated block) counts nothing.
func (d *depTracker) observe(w *writeScratch, now time.Time) {
	if len(w.deps) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m.Tick(now)
	w.depSvc = w.depSvc[:0]
	for _, name := range w.resService {
		w.depSvc = append(w.depSvc, d.intern(name))
	}
	// Every span of the batch first, so that a parent is found whatever the order.
	d.touched += d.m.Touch(func(yield func(uint64) bool) {
		for i := range w.deps {
			if !yield(w.deps[i].key) {
				return
			}
		}
	})
	var lastPeer string
	var lastPeerID uint32
	for i := range w.deps {
		r := &w.deps[i]
		svc := w.depSvc[r.res]
		e := spanmatch.Span[depSpan]{Data: depSpan{bucket: r.bucket}, Svc: svc, Kind: r.kind, Flags: r.flags}
		if r.peer != "" {
			if r.peer != lastPeer || lastPeerID == 0 {
				lastPeer, lastPeerID = r.peer, d.intern(r.peer)
			}
			if lastPeerID != 0 && lastPeerID != svc {
				e.Data.peer, e.Flags = lastPeerID, e.Flags|spanmatch.Peer
			}
		}
		d.m.Put(r.key, e)
	}
	var matched int64
	for i := range w.deps {
		r := &w.deps[i]
		svc := w.depSvc[r.res]
		if d.m.Waiting() {
			// The children waiting for this span are calls from its service.
			matched += d.m.Claim(r.key, spanmatch.Span[depSpan]{Svc: svc})
		}
		if r.parent == 0 {
			continue
		}
		c := pendingChild{svc: svc, bucket: r.bucket, calls: 1}
		if r.flags&spanmatch.Error != 0 {
			c.errors = 1
		}
		if d.m.Match(r.parent, c) {
			matched++
		}
	}
	d.matched.Add(matched)
}

// link counts the calls from parent to the child c when their services differ.
func (d *depTracker) link(p spanmatch.Span[depSpan], c pendingChild) bool {
	if p.Svc == c.svc {
		return false
	}
	d.count(p.Svc, c.svc, c.bucket, uint64(c.calls), uint64(c.errors))
	return true
}

// peerCall counts a client span that no child answered as a call to its peer.
func (d *depTracker) peerCall(e spanmatch.Span[depSpan]) {
	var errs uint64
	if e.Flags&spanmatch.Error != 0 {
		errs = 1
	}
	d.count(e.Svc, e.Data.peer, e.Data.bucket, 1, errs)
	d.peerCalls.Add(1)
}

// count adds calls to an edge, in the totals readers see and in the next flush.
func (d *depTracker) count(parent, child, bucket uint32, calls, errs uint64) {
	if parent == 0 || child == 0 {
		return
	}
	k := edgeKey{bucket: bucket, parent: parent, child: child}
	t, ok := d.totals[k]
	if !ok && len(d.totals) >= maxDepEdges {
		d.dropped.Add(int64(calls))
		return
	}
	d.totals[k] = edgeCounts{calls: t.calls + calls, errors: t.errors + errs}
	u := d.unflushed[k]
	d.unflushed[k] = edgeCounts{calls: u.calls + calls, errors: u.errors + errs}
}

// drain decides everything still waiting, as if the wait had passed twice: client
// spans unanswered become peer calls, children without parent are unmatched.
func (d *depTracker) drain() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m.Drain()
}

// dropBelow forgets the totals of buckets below limit (retention dropped them).
func (d *depTracker) dropBelow(limit uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.totals {
		if k.bucket < limit {
			delete(d.totals, k)
		}
	}
	for k := range d.unflushed {
		if k.bucket < limit {
			delete(d.unflushed, k)
		}
	}
	for b := range d.deltaKeys {
		if b < limit {
			delete(d.deltaKeys, b)
		}
	}
}

// GetDependencies sums the edges of every bucket overlapping [endTs-lookback, endTs].
func (s *Store) GetDependencies(ctx context.Context, endTs time.Time, lookback time.Duration) ([]storage.DependencyLink, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get dependencies: %w", err)
	}
	lookback = max(lookback, 0)
	lo, hi := bucketOf(unixNs(endTs.Add(-lookback))), bucketOf(unixNs(endTs))
	type pair struct{ parent, child uint32 }
	d := &s.deps
	d.mu.Lock()
	sums := map[pair]edgeCounts{}
	for k, c := range d.totals {
		if k.bucket < lo || k.bucket > hi {
			continue
		}
		p := pair{k.parent, k.child}
		t := sums[p]
		sums[p] = edgeCounts{calls: t.calls + c.calls, errors: t.errors + c.errors}
	}
	out := make([]storage.DependencyLink, 0, len(sums))
	for p, c := range sums {
		out = append(out, storage.DependencyLink{Parent: d.names[p.parent], Child: d.names[p.child], CallCount: c.calls, ErrorCount: c.errors})
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b storage.DependencyLink) int {
		return cmp.Or(cmp.Compare(a.Parent, b.Parent), cmp.Compare(a.Child, b.Child))
	})
	return out, nil
}

// namedEdge is an edge of one bucket by name, as stored.
type namedEdge struct {
	parent, child string
	edgeCounts
}

func compareNamed(a, b namedEdge) int {
	return cmp.Or(cmp.Compare(a.parent, b.parent), cmp.Compare(a.child, b.child))
}

func appendDepValue(dst []byte, edges []namedEdge) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(edges)))
	for _, e := range edges {
		dst = appendStr(dst, e.parent)
		dst = appendStr(dst, e.child)
		dst = binary.AppendUvarint(dst, e.calls)
		dst = binary.AppendUvarint(dst, e.errors)
	}
	return dst
}

var errBadDepValue = errors.New("dependency value truncated")

func decodeDepValue(b []byte, fn func(e namedEdge)) error {
	r := byteReader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return errBadDepValue
	}
	for i := uint64(0); i < n && !r.bad; i++ {
		e := namedEdge{parent: r.str(), child: r.str()}
		e.calls, e.errors = r.uvarint(), r.uvarint()
		if !r.bad {
			fn(e)
		}
	}
	if r.bad || len(r.b) != 0 {
		return errBadDepValue
	}
	return nil
}

func appendDepKey(dst []byte, bucket uint32, flushID uint64) []byte {
	dst = append(dst, prefixDependency)
	dst = binary.BigEndian.AppendUint32(dst, bucket)
	return binary.BigEndian.AppendUint64(dst, flushID)
}

// loadDependencies reads the dependency family from the first bucket retention keeps:
// never span data.
func (s *Store) loadDependencies() error {
	d := &s.deps
	keep := bucketOf(unixNs(s.opts.Now().Add(-s.opts.Retention)))
	d.mu.Lock()
	defer d.mu.Unlock()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 16, Prefix: []byte{prefixDependency}})
		defer it.Close()
		for it.Seek(appendDepKey(nil, keep, 0)[:5]); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()
			if len(key) != depKeyLen {
				return fmt.Errorf("dependency key %x: want %d bytes", key, depKeyLen)
			}
			bucket := binary.BigEndian.Uint32(key[1:5])
			d.lastFlushID = max(d.lastFlushID, binary.BigEndian.Uint64(key[5:]))
			d.deltaKeys[bucket]++
			err := item.Value(func(v []byte) error {
				return decodeDepValue(v, func(e namedEdge) {
					p, c := d.intern(e.parent), d.intern(e.child)
					if p == 0 || c == 0 {
						return
					}
					k := edgeKey{bucket: bucket, parent: p, child: c}
					t := d.totals[k]
					d.totals[k] = edgeCounts{calls: t.calls + e.calls, errors: t.errors + e.errors}
				})
			})
			if err != nil {
				return fmt.Errorf("dependency key %x: %w", key, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load dependencies: %w", err)
	}
	return nil
}

// nextFlushID is a key suffix no earlier flush used. Called with flushMu held.
func (d *depTracker) nextFlushID(now time.Time) uint64 {
	d.lastFlushID = max(d.lastFlushID+1, unixNs(now))
	return d.lastFlushID
}

// flushDependencies writes the counts taken since the last flush, one delta key per
// bucket, then compacts buckets two or more hours old that hold several deltas.
func (s *Store) flushDependencies(now time.Time) error {
	d := &s.deps
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.Lock()
	d.m.Tick(now)
	delta := d.unflushed
	d.unflushed, d.spare = d.spare, nil
	names := d.names // append-only: entries below len never change
	d.mu.Unlock()

	var err error
	if len(delta) > 0 {
		err = s.writeDelta(now, delta, names)
	}
	d.mu.Lock()
	if err != nil {
		for k, c := range delta { // keep them for the next flush
			u := d.unflushed[k]
			d.unflushed[k] = edgeCounts{calls: u.calls + c.calls, errors: u.errors + c.errors}
		}
	}
	clear(delta)
	d.spare = delta
	var old []uint32
	for b, n := range d.deltaKeys {
		if n > 1 && b+2 <= bucketOf(unixNs(now)) {
			old = append(old, b)
		}
	}
	d.mu.Unlock()
	if err != nil {
		d.flushFailures.Add(1)
		return err
	}
	d.flushes.Add(1)
	slices.Sort(old)
	for _, b := range old {
		if err := s.compactDependencies(now, b); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) writeDelta(now time.Time, delta map[edgeKey]edgeCounts, names []string) error {
	d := &s.deps
	byBucket := map[uint32][]namedEdge{}
	for k, c := range delta {
		byBucket[k.bucket] = append(byBucket[k.bucket], namedEdge{parent: names[k.parent], child: names[k.child], edgeCounts: c})
	}
	id := d.nextFlushID(now)
	exp := s.expiresAt(now)
	s.retention.dropMu.RLock()
	err := s.db.Update(func(txn *badger.Txn) error {
		for b, edges := range byBucket {
			slices.SortFunc(edges, compareNamed)
			if err := txn.SetEntry(&badger.Entry{Key: appendDepKey(nil, b, id), Value: appendDepValue(nil, edges), ExpiresAt: exp}); err != nil {
				return err
			}
		}
		return nil
	})
	s.retention.dropMu.RUnlock()
	if err != nil {
		return fmt.Errorf("flush dependency counts of %d buckets: %w", len(byBucket), err)
	}
	d.mu.Lock()
	for b := range byBucket {
		d.deltaKeys[b]++
	}
	d.mu.Unlock()
	return nil
}

// compactDependencies replaces the delta keys of one bucket by their sum, in one
// transaction. Flushes are serialized with it (flushMu), so no delta of the bucket is
// written meanwhile; one written later simply adds to the merged key.
func (s *Store) compactDependencies(now time.Time, bucket uint32) error {
	d := &s.deps
	prefix := binary.BigEndian.AppendUint32([]byte{prefixDependency}, bucket)
	id := d.nextFlushID(now)
	exp := s.expiresAt(now)
	var keys int
	s.retention.dropMu.RLock()
	err := s.db.Update(func(txn *badger.Txn) error {
		sums := map[[2]string]edgeCounts{}
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefix})
		var del [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			del = append(del, item.KeyCopy(nil))
			err := item.Value(func(v []byte) error {
				return decodeDepValue(v, func(e namedEdge) {
					k := [2]string{e.parent, e.child}
					t := sums[k]
					sums[k] = edgeCounts{calls: t.calls + e.calls, errors: t.errors + e.errors}
				})
			})
			if err != nil {
				it.Close()
				return fmt.Errorf("dependency key %x: %w", item.Key(), err)
			}
		}
		it.Close()
		keys = len(del)
		if keys <= 1 {
			return nil
		}
		for _, k := range del {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		edges := make([]namedEdge, 0, len(sums))
		for k, c := range sums {
			edges = append(edges, namedEdge{parent: k[0], child: k[1], edgeCounts: c})
		}
		slices.SortFunc(edges, compareNamed)
		return txn.SetEntry(&badger.Entry{Key: appendDepKey(nil, bucket, id), Value: appendDepValue(nil, edges), ExpiresAt: exp})
	})
	s.retention.dropMu.RUnlock()
	if err != nil {
		return fmt.Errorf("compact dependency counts of bucket %d: %w", bucket, err)
	}
	d.mu.Lock()
	if _, ok := d.deltaKeys[bucket]; ok {
		d.deltaKeys[bucket] = min(keys, 1)
	}
	d.mu.Unlock()
	return nil
}

func (s *Store) startDependencyFlusher() {
	d := &s.deps
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d.done)
		t := time.NewTicker(s.opts.DependencyFlushInterval)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
				if err := s.flushDependencies(time.Now()); err != nil {
					s.logWarn("trace store dependency flush", zap.Error(err))
				}
			}
		}
	}()
}

// stopDependencies stops the flusher, decides everything still waiting and flushes
// it. Safe without startDependencyFlusher.
func (s *Store) stopDependencies() error {
	d := &s.deps
	if d.stop == nil {
		return nil
	}
	close(d.stop)
	<-d.done
	d.drain()
	return s.flushDependencies(time.Now())
}
