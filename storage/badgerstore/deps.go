package badgerstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

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

// Flags of a remembered span and of a span of the batch being observed.
const (
	depServer   uint8 = 1 << iota // server or consumer: wins a shared (Zipkin) span ID
	depError                      // status Error
	depPeer                       // a client or producer span naming an uninstrumented peer
	depAnswered                   // a child span of another service matched it
)

// depRec is one span of a batch, gathered by planFields without allocating. peer
// points into the caller's spans and is cleared with the scratch.
type depRec struct {
	key, parent uint64 // spanKey of the span and of its parent (0: root)
	bucket      uint32
	res         int32
	flags       uint8
	peer        string
}

// depSpan is what the table remembers of a recent span.
type depSpan struct {
	svc, peer, bucket uint32
	flags             uint8
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

	// Two generations each: [0] is current, [1] the previous one, dropped at the next
	// turn over. spans: recent spans by spanKey; pending: children by their parent's
	// spanKey; extra: further children of a parent with another service or bucket.
	spans   [2]map[uint64]depSpan
	pending [2]map[uint64]pendingChild
	extra   [2]map[uint64][]pendingChild
	turned  time.Time

	wait                   time.Duration
	spanCap, pendingCap    int
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
	for i := range 2 {
		d.spans[i] = map[uint64]depSpan{}
		d.pending[i] = map[uint64]pendingChild{}
		d.extra[i] = map[uint64][]pendingChild{}
	}
	d.totals, d.unflushed, d.spare = map[edgeKey]edgeCounts{}, map[edgeKey]edgeCounts{}, map[edgeKey]edgeCounts{}
	d.deltaKeys = map[uint32]int{}
	d.wait, d.spanCap, d.pendingCap = o.DependencyWait, o.DependencySpans, o.DependencyPending
	d.turned = time.Now()
}

// spanKey hashes a trace ID and span ID into 64 bits (a multiply-fold mix, as in
// wyhash): span IDs alone repeat across traces in some generators. Never 0.
func spanKey(t pcommon.TraceID, s pcommon.SpanID) uint64 {
	const k0, k1, k2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
	mix := func(a, b uint64) uint64 { hi, lo := bits.Mul64(a, b); return hi ^ lo }
	h := mix(binary.LittleEndian.Uint64(t[:8])^k0, binary.LittleEndian.Uint64(t[8:])^k1)
	h = mix(h^binary.LittleEndian.Uint64(s[:]), k2)
	if h == 0 {
		h = 1
	}
	return h
}

// addDepRec notes one span of the batch for observe.
func (w *writeScratch) addDepRec(sp ptrace.Span, id pcommon.TraceID, res int32, bucket uint32) {
	r := depRec{key: spanKey(id, sp.SpanID()), bucket: bucket, res: res}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		r.parent = spanKey(id, p)
	}
	switch sp.Kind() {
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		r.flags |= depServer
	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		r.peer = peerService(sp.Attributes())
	}
	if sp.Status().Code() == ptrace.StatusCodeError {
		r.flags |= depError
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
	if now.Sub(d.turned) >= d.wait {
		d.turnSpans()
		d.turnPending()
		d.turned = now
	}
	w.depSvc = w.depSvc[:0]
	for _, name := range w.resService {
		w.depSvc = append(w.depSvc, d.intern(name))
	}
	// Every span of the batch first, so that a parent is found whatever the order.
	var lastPeer string
	var lastPeerID uint32
	for i := range w.deps {
		r := &w.deps[i]
		if len(d.spans[0]) >= d.spanCap {
			d.turnSpans()
		}
		svc := w.depSvc[r.res]
		e := depSpan{svc: svc, bucket: r.bucket, flags: r.flags & (depServer | depError)}
		if r.peer != "" {
			if r.peer != lastPeer || lastPeerID == 0 {
				lastPeer, lastPeerID = r.peer, d.intern(r.peer)
			}
			if lastPeerID != 0 && lastPeerID != svc {
				e.peer, e.flags = lastPeerID, e.flags|depPeer
			}
		}
		if old, ok := d.spans[0][r.key]; ok {
			if old.flags&depServer != 0 && e.flags&depServer == 0 {
				continue // a shared span ID answers as its server side
			}
			if old.svc == svc {
				e.flags |= old.flags & depAnswered
			}
		}
		d.spans[0][r.key] = e
	}
	var matched int64
	for i := range w.deps {
		r := &w.deps[i]
		svc := w.depSvc[r.res]
		if len(d.pending[0])+len(d.pending[1]) > 0 {
			matched += d.claimChildren(r.key, svc)
		}
		if r.parent == 0 {
			continue
		}
		p, gen, ok := d.lookup(r.parent)
		if !ok {
			d.addPending(r.parent, svc, r.bucket, r.flags&depError != 0)
			continue
		}
		matched++
		if p.svc == svc {
			continue
		}
		var errs uint64
		if r.flags&depError != 0 {
			errs = 1
		}
		d.count(p.svc, svc, r.bucket, 1, errs)
		if p.flags&depPeer != 0 && p.flags&depAnswered == 0 {
			p.flags |= depAnswered
			d.spans[gen][r.parent] = p
		}
	}
	d.matched.Add(matched)
}

func (d *depTracker) lookup(key uint64) (depSpan, int, bool) {
	if e, ok := d.spans[0][key]; ok {
		return e, 0, true
	}
	if e, ok := d.spans[1][key]; ok {
		return e, 1, true
	}
	return depSpan{}, 0, false
}

// claimChildren matches the children waiting for the span key, of service svc, and
// returns how many there were.
func (d *depTracker) claimChildren(key uint64, svc uint32) int64 {
	var n int64
	answered := false
	take := func(c pendingChild) {
		n += int64(c.calls)
		if c.svc != svc {
			d.count(svc, c.svc, c.bucket, uint64(c.calls), uint64(c.errors))
			answered = true
		}
	}
	for gen := range 2 {
		c, ok := d.pending[gen][key]
		if !ok {
			continue
		}
		take(c)
		delete(d.pending[gen], key)
		if more, ok := d.extra[gen][key]; ok {
			for _, c := range more {
				take(c)
			}
			delete(d.extra[gen], key)
		}
	}
	if answered {
		if e, gen, ok := d.lookup(key); ok && e.flags&depPeer != 0 {
			e.flags |= depAnswered
			d.spans[gen][key] = e
		}
	}
	return n
}

func (d *depTracker) addPending(parent uint64, svc, bucket uint32, isErr bool) {
	var errs uint32
	if isErr {
		errs = 1
	}
	cur := d.pending[0]
	if c, ok := cur[parent]; ok {
		if c.svc == svc && c.bucket == bucket {
			c.calls++
			c.errors += errs
			cur[parent] = c
			return
		}
		more := d.extra[0][parent]
		for i := range more {
			if more[i].svc == svc && more[i].bucket == bucket {
				more[i].calls++
				more[i].errors += errs
				return
			}
		}
		d.extra[0][parent] = append(more, pendingChild{svc: svc, bucket: bucket, calls: 1, errors: errs})
		return
	}
	if len(cur) >= d.pendingCap {
		d.turnPending()
		cur = d.pending[0]
	}
	cur[parent] = pendingChild{svc: svc, bucket: bucket, calls: 1, errors: errs}
}

// turnSpans drops the previous generation of spans, counting its client spans that
// no child answered as calls to their peer, and starts a new current generation.
func (d *depTracker) turnSpans() {
	old := d.spans[1]
	for k, e := range old {
		if e.flags&(depPeer|depAnswered) != depPeer {
			continue
		}
		if _, again := d.spans[0][k]; again {
			continue // written again since: it is decided when that copy leaves
		}
		var errs uint64
		if e.flags&depError != 0 {
			errs = 1
		}
		d.count(e.svc, e.peer, e.bucket, 1, errs)
		d.peerCalls.Add(1)
	}
	clear(old)
	d.spans[0], d.spans[1] = old, d.spans[0]
}

// turnPending drops the previous generation of waiting children as unmatched.
func (d *depTracker) turnPending() {
	var n int64
	for _, c := range d.pending[1] {
		n += int64(c.calls)
	}
	for _, more := range d.extra[1] {
		for _, c := range more {
			n += int64(c.calls)
		}
	}
	d.unmatched.Add(n)
	clear(d.pending[1])
	clear(d.extra[1])
	d.pending[0], d.pending[1] = d.pending[1], d.pending[0]
	d.extra[0], d.extra[1] = d.extra[1], d.extra[0]
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
	for range 2 {
		d.turnSpans()
		d.turnPending()
	}
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
	if now.Sub(d.turned) >= d.wait {
		d.turnSpans()
		d.turnPending()
		d.turned = now
	}
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
