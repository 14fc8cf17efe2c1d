package badgerstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// Retention (storage/FORMAT.md, "Retention"): expired data goes by whole time buckets,
// dropped with one DB.DropPrefix per pass, and value-log GC then gives the blocks' bytes
// back to the file system. Jaeger's Badger store relies on per-key TTLs alone, and its
// users' most common complaint is a disk that never shrinks: expired values stay in the
// value log until something runs GC, and per-key expiry leaves files half dead.

const (
	defaultRetentionInterval = 5 * time.Minute
	// gcDiscardRatio is Badger's recommended ratio: a value-log file is rewritten when
	// at least half of it is dead, a lifetime write amplification of 2. Files holding
	// only dropped buckets are entirely dead and are deleted without copying.
	gcDiscardRatio = 0.5
	// maxGCRewrites bounds one pass' GC: each rewrite is one file (256 MiB by
	// default), and the next pass continues.
	maxGCRewrites = 64
	// maxCapRounds bounds the drop-measure rounds of the disk cap in one pass.
	maxCapRounds = 16
)

// bucketedPrefixes are the key families that start with prefix | bucket uint32.
var bucketedPrefixes = [...]byte{prefixBlock, prefixTable, prefixSegPage, prefixSegDir, prefixDependency, prefixRollupRED, prefixRollupEdge}

var errStoreClosed = errors.New("trace store is closed")

type retentionState struct {
	// dropMu: writers hold it shared around each commit, a drop holds it exclusively
	// (see Store.commit).
	dropMu sync.RWMutex

	// passMu serializes passes; closed (under passMu) refuses passes after Close.
	passMu sync.Mutex
	closed bool

	life    context.Context // cancelled by Close
	cancel  context.CancelFunc
	done    chan struct{} // closed when the loop has returned
	started bool

	passes, bucketsDropped, bytesReclaimed, gcRewrites, lastPass, lastStall atomic.Int64
}

// passResult is what one retention pass did.
type passResult struct {
	buckets    int           // buckets dropped, by age and by the disk cap
	reclaimed  int64         // DiskSize before minus after, never negative
	gcRewrites int           // value-log files rewritten
	stall      time.Duration // time DropPrefix held writes, summed over its calls
	duration   time.Duration
}

func (s *Store) startRetention() {
	r := &s.retention
	r.life, r.cancel = context.WithCancel(context.Background())
	r.done = make(chan struct{})
	r.started = true
	go s.retentionLoop(r.life, r.done)
}

// stopRetention ends the loop, waits for it and for any pass in progress, and refuses
// further passes: none may touch the DB once Close closes it.
func (s *Store) stopRetention() {
	r := &s.retention
	if !r.started {
		return
	}
	r.cancel()
	<-r.done
	r.passMu.Lock()
	r.closed = true
	r.passMu.Unlock()
}

func (s *Store) retentionLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.opts.RetentionInterval)
	defer t.Stop()
	for {
		// The first pass runs at Open: after downtime, expired buckets go at once.
		res, err := s.retentionPass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.logWarn("trace store retention pass", zap.Error(err))
		case err == nil && (res.buckets > 0 || res.gcRewrites > 0) && s.opts.Logger != nil:
			s.opts.Logger.Info("trace store retention pass",
				zap.Int("buckets_dropped", res.buckets), zap.Int64("bytes_reclaimed", res.reclaimed),
				zap.Int("vlog_gc_rewrites", res.gcRewrites), zap.Duration("write_stall", res.stall),
				zap.Duration("duration", res.duration))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Store) logWarn(msg string, fields ...zap.Field) {
	if s.opts.Logger != nil {
		s.opts.Logger.Warn(msg, fields...)
	}
}

func (s *Store) hook(step string) {
	if s.opts.retentionHook != nil {
		s.opts.retentionHook(step)
	}
}

// retentionPass drops every expired bucket, runs value-log GC, and enforces the disk
// cap. It stops early (with an error wrapping the cause) when ctx ends or the store
// closes; whatever it dropped stays dropped.
func (s *Store) retentionPass(ctx context.Context) (passResult, error) {
	r := &s.retention
	r.passMu.Lock()
	defer r.passMu.Unlock()
	if r.closed {
		return passResult{}, errStoreClosed
	}
	// Close cancels r.life; a pass started by a caller must stop for it too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.life, cancel)()

	start := time.Now()
	lsm, vlog := s.DiskSize()
	before := lsm + vlog
	var res passResult
	err := s.pass(ctx, &res)
	lsm, vlog = s.DiskSize()
	res.reclaimed = max(0, before-(lsm+vlog))
	res.duration = time.Since(start)

	r.passes.Add(1)
	r.bucketsDropped.Add(int64(res.buckets))
	r.bytesReclaimed.Add(res.reclaimed)
	r.gcRewrites.Add(int64(res.gcRewrites))
	r.lastPass.Store(int64(res.duration))
	r.lastStall.Store(int64(res.stall))
	return res, err
}

func (s *Store) pass(ctx context.Context, res *passResult) error {
	now := s.opts.Now()
	// Buckets below keep end at or before now - Retention: all their spans expired.
	keep := bucketOf(unixNs(now.Add(-s.opts.Retention)))
	expired, err := s.bucketsBelow(keep)
	if err != nil {
		return err
	}
	if err := s.dropBuckets(ctx, expired, res); err != nil {
		return err
	}
	s.hook("dropped")
	// GC runs on every pass, not only after drops: TTL-expired values (summaries past
	// their TTL, data written late into old buckets) leave their files half dead too.
	if err := s.collectValueLog(ctx, res); err != nil {
		return err
	}
	s.hook("collected")
	if s.opts.MaxDiskBytes > 0 {
		return s.enforceDiskCap(ctx, bucketOf(unixNs(now)), res)
	}
	return nil
}

// bucketsBelow returns, ascending, the buckets below limit that hold a key of any
// bucketed family. It seeks from one present bucket to the next, so its cost is the
// number of present buckets, not the width of the range.
func (s *Store) bucketsBelow(limit uint32) ([]uint32, error) {
	var out []uint32
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})
		defer it.Close()
		seek := make([]byte, 0, 5)
		for _, p := range bucketedPrefixes {
			seek = binary.BigEndian.AppendUint32(append(seek[:0], p), 0)
			for it.Seek(seek); it.ValidForPrefix(seek[:1]); it.Seek(seek) {
				key := it.Item().Key()
				if len(key) < 5 {
					return fmt.Errorf("bucketed key %x is too short", key)
				}
				b := binary.BigEndian.Uint32(key[1:5])
				if b >= limit {
					break
				}
				out = insertSorted(out, b)
				if b == math.MaxUint32 {
					break
				}
				seek = binary.BigEndian.AppendUint32(seek[:1], b+1)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list expired buckets: %w", err)
	}
	return out, nil
}

func insertSorted(s []uint32, v uint32) []uint32 {
	for i, x := range s {
		if x == v {
			return s
		}
		if x > v {
			s = append(s, 0)
			copy(s[i+1:], s[i:])
			s[i] = v
			return s
		}
	}
	return append(s, v)
}

// dropBuckets drops the buckets, which must be every present bucket up to the last of
// them, from every bucketed family in one DropPrefix call: each call blocks writes
// while it flushes the memtable and compacts the tables holding the prefixes.
func (s *Store) dropBuckets(ctx context.Context, buckets []uint32, res *passResult) error {
	if len(buckets) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("drop expired buckets: %w", err)
	}
	prefixes := make([][]byte, 0, len(bucketedPrefixes)*len(buckets))
	for _, b := range buckets {
		for _, p := range bucketedPrefixes {
			prefixes = append(prefixes, binary.BigEndian.AppendUint32([]byte{p}, b))
		}
	}
	// Before the drop, so that no search fills the cache with a block being dropped.
	s.cache.dropBelow(buckets[len(buckets)-1] + 1)
	// Before the drop, so that a flush or merge of these buckets running now either
	// installs its segments before the drop deletes them, or not at all (install).
	s.idx.raiseFloor(buckets[len(buckets)-1] + 1)
	r := &s.retention
	start := time.Now()
	r.dropMu.Lock()
	err := s.db.DropPrefix(prefixes...)
	r.dropMu.Unlock()
	res.stall += time.Since(start)
	if err != nil {
		return fmt.Errorf("drop %d buckets %d..%d: %w", len(buckets), buckets[0], buckets[len(buckets)-1], err)
	}
	s.deps.dropBelow(buckets[len(buckets)-1] + 1)
	s.idx.dropBelow(buckets[len(buckets)-1] + 1)
	res.buckets += len(buckets)
	return nil
}

// collectValueLog runs Badger's value-log GC while it rewrites files.
func (s *Store) collectValueLog(ctx context.Context, res *passResult) error {
	for range maxGCRewrites {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("value log GC: %w", err)
		}
		err := s.db.RunValueLogGC(gcDiscardRatio)
		// ErrNoRewrite: no file is dead enough. ErrRejected: a GC is already running
		// (or the DB is closing); either way there is nothing more to do now.
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("value log GC: %w", err)
		}
		res.gcRewrites++
	}
	return nil
}

// enforceDiskCap drops the oldest buckets below current until DiskSize is under
// MaxDiskBytes. Each round drops as many buckets as their estimated bytes say are
// needed, in one DropPrefix call, then collects the value log and measures again. It
// stops when a round did not lower the size: what is left over the cap is then not
// reclaimable now (the live value-log file, memtables), and dropping more buckets
// would lose data for nothing.
func (s *Store) enforceDiskCap(ctx context.Context, current uint32, res *passResult) error {
	prev := int64(math.MaxInt64)
	for range maxCapRounds {
		lsm, vlog := s.DiskSize()
		size := lsm + vlog
		if size <= s.opts.MaxDiskBytes || size >= prev {
			return nil
		}
		prev = size
		buckets, err := s.bucketsBelow(current)
		if err != nil {
			return err
		}
		if len(buckets) == 0 {
			return nil
		}
		drop, err := s.oldestBucketsHolding(buckets, size-s.opts.MaxDiskBytes)
		if err != nil {
			return err
		}
		if err := s.dropBuckets(ctx, drop, res); err != nil {
			return err
		}
		s.hook("capped")
		if err := s.collectValueLog(ctx, res); err != nil {
			return err
		}
	}
	return nil
}

// oldestBucketsHolding returns the shortest run of the oldest buckets whose estimated
// bytes reach want (all of them if they do not). A bucket's estimate is the sum of its
// keys' Badger estimated sizes (value-log values by their length), read key-only, so
// only the buckets about to go are read.
func (s *Store) oldestBucketsHolding(buckets []uint32, want int64) ([]uint32, error) {
	var sum int64
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})
		defer it.Close()
		prefix := make([]byte, 0, 5)
		for n < len(buckets) && sum < want {
			for _, p := range bucketedPrefixes {
				prefix = binary.BigEndian.AppendUint32(append(prefix[:0], p), buckets[n])
				for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
					sum += it.Item().EstimatedSize()
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("estimate bucket sizes: %w", err)
	}
	return buckets[:n], nil
}
