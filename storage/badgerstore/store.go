package badgerstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/storage"
)

var (
	_ storage.Writer = (*Store)(nil)
	_ storage.Reader = (*Store)(nil)
)

// Options configures a Store. The zero value of every field means its default.
type Options struct {
	// Retention is how long spans are kept (default 72h). A background loop drops
	// every time bucket whose spans are all older than Retention (retention.go); every
	// key also expires Retention plus one time bucket after it was written.
	Retention time.Duration
	// RetentionInterval is how often the retention loop runs (default 5 minutes; it
	// also runs once at Open).
	RetentionInterval time.Duration
	// MaxDiskBytes caps the bytes on disk (LSM + value log, as DiskSize counts them):
	// past it, retention drops the oldest buckets early. Zero means no cap.
	MaxDiskBytes int64
	// Now is the retention loop's clock (default time.Now); tests move it forward
	// instead of waiting hours.
	Now func() time.Time
	// ValueLogFileSize is the size of one Badger value-log file (default 256 MiB).
	// Value-log GC reclaims whole files and never the newest one.
	ValueLogFileSize int64
	// SyncWrites makes every commit fsync before WriteTraces returns, so an
	// acknowledged span survives a power loss. Default true; Badger groups concurrent
	// commits into one fsync. Set NoSyncWrites to turn it off (tests, benchmarks).
	NoSyncWrites bool
	// MemTableSize, NumMemtables, BlockCacheSize and IndexCacheSize bound Badger's
	// memory (defaults 32 MiB, 3, 64 MiB, 32 MiB); Badger's own defaults reach
	// several GB of RSS under a burst writer.
	MemTableSize   int64
	NumMemtables   int
	BlockCacheSize int64
	IndexCacheSize int64
	// DecodedBlockCacheSize bounds the readers' cache of decoded blocks (default
	// 32 MiB of heap, counted as 6 × their uncompressed size: measured 5.2 × for
	// telemetrygen batches).
	DecodedBlockCacheSize int64
	// DependencyWait is how long the dependency matcher keeps a span for its children
	// and a child for its parent: between one and two DependencyWaits (default 15s).
	// A client span with peer.service that no child answered within it counts as a call
	// to that peer.
	DependencyWait time.Duration
	// DependencySpans and DependencyPending bound the matcher's two generations of
	// recent spans (default 2^18 each) and of children waiting for their parent (2^17
	// each); a full generation turns over early.
	DependencySpans   int
	DependencyPending int
	// DependencyFlushInterval is how often dependency counts are written (default
	// 10s); a crash loses at most the counts since the last flush.
	DependencyFlushInterval time.Duration
	// NoDependencies turns the store's dependency counting off (GetDependencies then
	// answers from what earlier processes stored): for pipelines whose analytics stage
	// counts the service graph already.
	NoDependencies bool
	// HeadMaxSpans and HeadMaxAge bound the in-memory head of the search index
	// (index.go): past either, it is flushed as segments (defaults 2^17 spans, 5
	// minutes). Open re-indexes the blocks of a head lost in a crash, so HeadMaxSpans
	// also bounds that work.
	HeadMaxSpans int
	HeadMaxAge   time.Duration
	// Logger receives Badger's messages; nil silences them.
	Logger *zap.Logger

	// retentionHook, when set, is called by a retention pass after each step (tests
	// close the store in the middle of a pass).
	retentionHook func(step string)
}

func (o *Options) setDefaults() {
	if o.Retention <= 0 {
		o.Retention = 72 * time.Hour
	}
	if o.MemTableSize <= 0 {
		o.MemTableSize = 32 << 20
	}
	if o.NumMemtables <= 0 {
		o.NumMemtables = 3
	}
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = 64 << 20
	}
	if o.IndexCacheSize <= 0 {
		o.IndexCacheSize = 32 << 20
	}
	if o.DecodedBlockCacheSize <= 0 {
		o.DecodedBlockCacheSize = 32 << 20
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = defaultRetentionInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ValueLogFileSize <= 0 {
		o.ValueLogFileSize = 256 << 20
	}
	if o.DependencyWait <= 0 {
		o.DependencyWait = defaultDependencyWait
	}
	if o.DependencySpans <= 0 {
		o.DependencySpans = defaultDependencySpans
	}
	if o.DependencyPending <= 0 {
		o.DependencyPending = defaultDependencyPending
	}
	if o.HeadMaxSpans <= 0 {
		o.HeadMaxSpans = defaultHeadMaxSpans
	}
	if o.HeadMaxAge <= 0 {
		o.HeadMaxAge = defaultHeadMaxAge
	}
	if o.DependencyFlushInterval <= 0 {
		o.DependencyFlushInterval = defaultDependencyFlushInterval
	}
}

// Stats are counters for metrics. They count since Open.
type Stats struct {
	// SpansWritten counts spans in blocks that were new (a retried identical batch is
	// not counted again).
	SpansWritten int64
	// BlocksWritten counts new blocks; BlocksDeduplicated the blocks that were
	// already stored.
	BlocksWritten      int64
	BlocksDeduplicated int64
	// Conflicts counts transactions retried because a concurrent writer touched
	// the same trace summary.
	Conflicts int64
	// Commits counts Badger transactions committed by WriteTraces.
	Commits int64
	// Retention: passes run, buckets dropped (by age or by the disk cap), bytes on
	// disk the passes reclaimed (DiskSize before minus after, never negative), value-log
	// files rewritten by GC, and the duration of the last pass and of the write stall of
	// its DropPrefix calls.
	RetentionPasses    int64
	BucketsDropped     int64
	BytesReclaimed     int64
	ValueLogGCRewrites int64
	LastRetentionPass  time.Duration
	LastDropStall      time.Duration
	// Dependencies: child spans matched to their parent span (any service), child
	// spans whose parent did not arrive within the wait (no edge), calls counted to
	// uninstrumented peers (peer.service), calls not counted because a memory bound
	// was reached, and flushes of the counts that succeeded and failed.
	DependencyMatched       int64
	DependencyUnmatched     int64
	DependencyPeerCalls     int64
	DependencyDropped       int64
	DependencyFlushes       int64
	DependencyFlushFailures int64
	// Search index: head flushes and segment merges done and flushes failed, blocks
	// re-indexed at Open, segments a flush or merge made of a bucket that retention
	// dropped meanwhile (discarded, not installed), and the index's current size.
	IndexFlushes           int64
	IndexMerges            int64
	IndexFlushFailures     int64
	IndexReplayedBlocks    int64
	IndexDiscardedSegments int64
	Index                  IndexStats
	// TracesDeleted counts DeleteTrace calls that deleted a trace.
	TracesDeleted int64
	// AttributeValuesDropped counts attribute values not cataloged because their service
	// already had maxValuesPerScope values of that key.
	AttributeValuesDropped int64
	// ValueRereads counts values that did not decode on a first read and did on a
	// second, in a fresh transaction (readValue).
	ValueRereads int64
}

// storeIDs numbers the stores a process opens.
var storeIDs atomic.Uint64

// Store is the Badger trace store. It is safe for concurrent use.
type Store struct {
	db   *badger.DB
	dir  string
	opts Options
	// id tells this store from the process's others (writeScratch.opFreshOf).
	id uint64

	enc   *zstd.Encoder // span blocks
	dec   *zstd.Decoder
	cache *blockCache
	// chunkTarget is the uncompressed size of a block's chunks; tests set 0 to write
	// codec 1 blocks, as stores written before codec 2 hold.
	chunkTarget int

	catalogMu  sync.RWMutex
	services   map[string]int64 // name → key expiry (unix seconds)
	operations map[opKey]int64

	spansWritten, blocksWritten, blocksDeduped, conflicts, commits atomic.Int64

	retention retentionState
	deps      depTracker
	idx       index
	deleted   tombstones
	// statusFrom is the first bucket all of whose blocks carry status OK fields
	// (FORMAT.md, meta key 00 04): searches for status OK walk older buckets by
	// another field and read spans.
	statusFrom uint32
	// okFrom is the first bucket all of whose summary fragments count spans with status
	// OK (FORMAT.md, meta key 00 05): below it a fragment without the counts says
	// nothing, and searches for status Unset read spans.
	okFrom   uint32
	values   valueCatalog
	deleteMu sync.Mutex

	flusherStop context.CancelFunc
	flusherDone chan struct{}
	flushSignal chan struct{}

	indexFlushes, indexMerges, indexFlushFailures, indexReplayed atomic.Int64
	indexDiscarded                                               atomic.Int64
	tracesDeleted, valueRereads                                  atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

type opKey struct {
	service, name string
	kind          byte
}

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	opts.setDefaults()
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(!opts.NoSyncWrites).
		WithMemTableSize(opts.MemTableSize).
		WithNumMemtables(opts.NumMemtables).
		WithBlockCacheSize(opts.BlockCacheSize).
		WithIndexCacheSize(opts.IndexCacheSize).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithNumCompactors(2).
		WithValueLogFileSize(opts.ValueLogFileSize).
		WithValueThreshold(min(valueThreshold, opts.MemTableSize*15/100/2)).
		WithMetricsEnabled(false).
		WithLogger(nil)
	if opts.Logger != nil {
		bo = bo.WithLogger(zapLogger{opts.Logger.Sugar()})
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open trace store %q: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, opts: opts, id: storeIDs.Add(1), services: map[string]int64{}, operations: map[opKey]int64{},
		cache: newBlockCache(opts.DecodedBlockCacheSize), chunkTarget: defaultChunkTarget}
	s.deps.init(&s.opts)
	if err := s.init(); err != nil {
		return nil, errors.Join(fmt.Errorf("open trace store %q: %w", dir, err), s.closeDB())
	}
	s.startRetention()
	if !opts.NoDependencies {
		s.startDependencyFlusher()
	}
	s.startIndexFlusher()
	return s, nil
}

func (s *Store) init() error {
	if err := s.checkSchema(); err != nil {
		return err
	}
	var err error
	// A span block's literals are left without entropy coding: it costs 0.4% in size
	// and saves 40% of the encoder's CPU (benchdata batches: 571 → 349 µs per 160 KiB
	// block, ratio 0.1307 → 0.1312). (Index pages are S2: see writePages.)
	s.enc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithNoEntropyCompression(true))
	if err != nil {
		return fmt.Errorf("zstd encoder: %w", err)
	}
	s.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return fmt.Errorf("zstd decoder: %w", err)
	}
	if err := s.loadCatalogs(); err != nil {
		return err
	}
	if err := s.loadIndex(); err != nil {
		return err
	}
	if err := s.loadTombstones(); err != nil {
		return err
	}
	if err := s.loadValues(); err != nil {
		return err
	}
	return s.loadDependencies()
}

func (s *Store) checkSchema() error {
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte{prefixMeta, metaSchemaVersion})
		if errors.Is(err, badger.ErrKeyNotFound) {
			it := txn.NewIterator(badger.IteratorOptions{})
			it.Rewind()
			nonEmpty := it.Valid()
			it.Close()
			if nonEmpty {
				return errors.New("directory holds data but no schema version: not a Spoor trace store")
			}
			if err := txn.Set([]byte{prefixMeta, metaSchemaVersion}, binary.BigEndian.AppendUint32(nil, schemaVersion)); err != nil {
				return fmt.Errorf("write schema version: %w", err)
			}
			if err := txn.Set([]byte{prefixMeta, metaBucketWidth}, binary.BigEndian.AppendUint64(nil, uint64(bucketWidth))); err != nil {
				return fmt.Errorf("write bucket width: %w", err)
			}
			for _, k := range []byte{metaStatusFrom, metaOKFrom} {
				if err := txn.Set([]byte{prefixMeta, k}, binary.BigEndian.AppendUint32(nil, 0)); err != nil {
					return fmt.Errorf("write meta key %02x: %w", k, err)
				}
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if len(v) == 4 && binary.BigEndian.Uint32(v) < schemaVersion {
			return fmt.Errorf("schema version %d (an earlier layout, FORMAT.md) is not readable by this Spoor, which reads version %d only "+
				"and does not migrate: move the directory away or point Spoor at an empty one", binary.BigEndian.Uint32(v), schemaVersion)
		}
		if len(v) != 4 || binary.BigEndian.Uint32(v) != schemaVersion {
			return fmt.Errorf("unknown schema version %x (this Spoor reads version %d)", v, schemaVersion)
		}
		item, err = txn.Get([]byte{prefixMeta, metaBucketWidth})
		if err != nil {
			return fmt.Errorf("read bucket width: %w", err)
		}
		v, err = item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("read bucket width: %w", err)
		}
		if len(v) != 8 || time.Duration(binary.BigEndian.Uint64(v)) != bucketWidth {
			return fmt.Errorf("bucket width %x differs from this Spoor's %s", v, bucketWidth)
		}
		if s.statusFrom, err = bucketWatermark(txn, metaStatusFrom); err != nil {
			return fmt.Errorf("status field bucket: %w", err)
		}
		if s.okFrom, err = bucketWatermark(txn, metaOKFrom); err != nil {
			return fmt.Errorf("OK count bucket: %w", err)
		}
		return nil
	})
}

// bucketWatermark reads meta key 00 key, the first bucket all of whose blocks were
// written with a feature (status OK fields, 00 04; OK counts in summary fragments, 00 05).
// A version 5 store written before the feature existed has no such key: its blocks lie
// in buckets up to the last one holding a trace table, and blocks written from now on
// have the feature, in whichever bucket; the key is written so.
func bucketWatermark(txn *badger.Txn, key byte) (uint32, error) {
	item, err := txn.Get([]byte{prefixMeta, key})
	if err == nil {
		v, err := item.ValueCopy(nil)
		if err != nil {
			return 0, err
		}
		if len(v) != 4 {
			return 0, fmt.Errorf("meta key 00 %02x holds %x, not 4 bytes", key, v)
		}
		return binary.BigEndian.Uint32(v), nil
	}
	if !errors.Is(err, badger.ErrKeyNotFound) {
		return 0, err
	}
	var from uint32
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{prefixTable}})
	it.Seek([]byte{prefixTable, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	if it.Valid() {
		if k := it.Item().Key(); len(k) == blockKeyLen {
			from = max(binary.BigEndian.Uint32(k[1:5])+1, binary.BigEndian.Uint32(k[1:5])) // saturating
		}
	}
	it.Close()
	if err := txn.Set([]byte{prefixMeta, key}, binary.BigEndian.AppendUint32(nil, from)); err != nil {
		return 0, err
	}
	return from, nil
}

// loadCatalogs reads only the two small catalog prefixes, never trace data.
func (s *Store) loadCatalogs() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixService}})
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			s.services[string(item.Key()[1:])] = int64(item.ExpiresAt())
		}
		it.Close()
		it = txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixOperation}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()[1:]
			if len(k) < 2 {
				return fmt.Errorf("operation catalog key %x too short", item.Key())
			}
			n := int(binary.BigEndian.Uint16(k))
			if len(k) < 2+n+1 {
				return fmt.Errorf("operation catalog key %x too short", item.Key())
			}
			s.operations[opKey{service: string(k[2 : 2+n]), kind: k[2+n], name: string(k[3+n:])}] = int64(item.ExpiresAt())
		}
		return nil
	})
}

// Close flushes the dependency counts (counting client spans still waiting for an
// answer as peer calls), stops the retention loop, waits for a retention pass in
// progress, and closes the store. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		depErr := s.stopDependencies()
		s.stopRetention()
		idxErr := s.stopIndexFlusher()
		s.closeErr = errors.Join(depErr, idxErr, s.closeDB())
	})
	return s.closeErr
}

func (s *Store) closeDB() error {
	if s.enc != nil {
		if err := s.enc.Close(); err != nil {
			return fmt.Errorf("close zstd encoder: %w", err)
		}
	}
	if s.dec != nil {
		s.dec.Close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close trace store %q: %w", s.dir, err)
	}
	return nil
}

// Stats returns the counters since Open.
func (s *Store) Stats() Stats {
	return Stats{
		SpansWritten:       s.spansWritten.Load(),
		BlocksWritten:      s.blocksWritten.Load(),
		BlocksDeduplicated: s.blocksDeduped.Load(),
		Conflicts:          s.conflicts.Load(),
		Commits:            s.commits.Load(),
		RetentionPasses:    s.retention.passes.Load(),
		BucketsDropped:     s.retention.bucketsDropped.Load(),
		BytesReclaimed:     s.retention.bytesReclaimed.Load(),
		ValueLogGCRewrites: s.retention.gcRewrites.Load(),
		LastRetentionPass:  time.Duration(s.retention.lastPass.Load()),
		LastDropStall:      time.Duration(s.retention.lastStall.Load()),

		DependencyMatched:       s.deps.matched.Load(),
		DependencyUnmatched:     s.deps.unmatched.Load(),
		DependencyPeerCalls:     s.deps.peerCalls.Load(),
		DependencyDropped:       s.deps.dropped.Load(),
		DependencyFlushes:       s.deps.flushes.Load(),
		DependencyFlushFailures: s.deps.flushFailures.Load(),

		IndexFlushes:           s.indexFlushes.Load(),
		IndexMerges:            s.indexMerges.Load(),
		IndexFlushFailures:     s.indexFlushFailures.Load(),
		IndexReplayedBlocks:    s.indexReplayed.Load(),
		IndexDiscardedSegments: s.indexDiscarded.Load(),
		Index:                  s.idx.stats(),
		TracesDeleted:          s.tracesDeleted.Load(),
		AttributeValuesDropped: s.values.dropped.Load(),
		ValueRereads:           s.valueRereads.Load(),
	}
}

// DiskSize returns the bytes of the LSM tree (.sst files) and of the value log (.vlog
// files) on disk. While the store is open the last value log file is preallocated, so
// it is counted only as far as it has blocks on disk. It is meant for metrics: when the
// directory cannot be read it logs why and returns zeros.
func (s *Store) DiskSize() (lsm, vlog int64) {
	lsm, vlog, err := dirSizes(s.dir)
	if err != nil && s.opts.Logger != nil {
		s.opts.Logger.Warn("trace store disk size", zap.Error(err))
	}
	return lsm, vlog
}

// expiresAt is the Badger expiry of keys written now.
func (s *Store) expiresAt(now time.Time) uint64 {
	return uint64(now.Add(s.opts.Retention + bucketWidth).Unix())
}

type zapLogger struct{ l *zap.SugaredLogger }

func (z zapLogger) Errorf(f string, a ...any)   { z.l.Errorf(f, a...) }
func (z zapLogger) Warningf(f string, a ...any) { z.l.Warnf(f, a...) }
func (z zapLogger) Infof(f string, a ...any)    { z.l.Debugf(f, a...) }
func (z zapLogger) Debugf(f string, a ...any)   { z.l.Debugf(f, a...) }
