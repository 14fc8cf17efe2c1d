package storageext

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/badgerstore"
)

// ErrStoreUnavailable is returned by a Store call while no Badger store is open: after
// a write error left Badger unusable and before a reopen succeeded. It is retryable.
var ErrStoreUnavailable = errors.New("trace store is unavailable")

// Store is the trace store the other components use: the open badgerstore.Store, behind
// a lock that lets the extension close and reopen it after a write error.
//
// Why reopen: Badger v4 does not recover from an I/O error by itself. When creating
// its next value-log file fails (EIO, EROFS, EFBIG...), the empty file it had created
// stays behind, every later write fails with "file exists" after the fault has gone,
// and even a restart fails ("Open existing file ... Create a new file") until the file
// is removed. So after a failed write the extension reopens the store once the data
// directory takes writes again (the guard's probe), removing the empty files of
// failed creations first. Reopening also reads back from disk whatever a failed fsync
// may have left only in the page cache, rather than trusting it.
//
// One failure it cannot repair in place: when Badger cannot create its next memtable
// file, it is left without a mutable memtable, and the next read or write of that DB
// panics (badger v4.9.6, DB.ensureRoomForWrite). The Store then fences the DB off —
// no call reaches it again — and reports the store as broken; the extension reports a
// fatal error, the collector stops without closing the DB (every acknowledged span is
// already durable, as after a crash), and the next start opens the directory cleanly.
// The guard's probe makes this unlikely: it refuses writes as soon as the directory
// cannot take a file the size of Badger's next one.
type Store struct {
	open   func() (*badgerstore.Store, error)
	logger *zap.Logger

	mu     sync.RWMutex
	st     *badgerstore.Store // nil while unavailable
	broken error              // set when the open DB must not be touched again
	// catalogKeys are the attribute keys readers asked the store to catalog: a
	// reopened store is told them again.
	catalogKeys []string
}

var (
	_ storage.Reader           = (*Store)(nil)
	_ storage.Writer           = (*Store)(nil)
	_ storage.Searcher         = (*Store)(nil)
	_ storage.TraceCounter     = (*Store)(nil)
	_ storage.EncodedWriter    = (*Store)(nil)
	_ storage.SummaryReader    = (*Store)(nil)
	_ storage.DependencyReader = (*Store)(nil)
	_ storage.TraceDeleter     = (*Store)(nil)
	_ storage.RollupWriter     = (*Store)(nil)
	_ storage.RollupReader     = (*Store)(nil)
	_ storage.AlertStateStore  = (*Store)(nil)
)

// openStore removes what failed file creations left in dir and opens the store.
func openStore(dir string, logger *zap.Logger, open func() (*badgerstore.Store, error)) (*Store, error) {
	s := &Store{open: func() (*badgerstore.Store, error) {
		removeEmptyBadgerFiles(dir, logger)
		return open()
	}, logger: logger}
	st, err := s.open()
	if err != nil {
		return nil, err
	}
	s.st = st
	return s, nil
}

// get returns the open store with the read lock held; release unlocks.
func (s *Store) get() (*badgerstore.Store, error) {
	s.mu.RLock()
	if s.st == nil || s.broken != nil {
		err := s.broken
		s.mu.RUnlock()
		if err == nil {
			err = ErrStoreUnavailable
		}
		return nil, fmt.Errorf("%w: %w", ErrWritesRefused, err)
	}
	return s.st, nil
}

func (s *Store) release() { s.mu.RUnlock() }

// noteWriteErr fences the DB off when err says Badger has lost its mutable memtable.
func (s *Store) noteWriteErr(err error) {
	if err == nil || !strings.Contains(err.Error(), "cannot create new mem table") {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken == nil {
		s.broken = fmt.Errorf("the store cannot go on after a failed memtable creation and must be restarted: %w", err)
		s.logger.Error("Trace store broken: Badger could not create its next memtable; refusing every call until restart", zap.Error(err))
	}
}

// Broken returns why the open DB must not be used again, or nil.
func (s *Store) Broken() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.broken
}

// reopen closes the store and opens it again. Calls wait meanwhile.
func (s *Store) reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	start := time.Now()
	if s.st != nil {
		// The index head may fail to flush here (its write meets the same fault);
		// the store rebuilds it from the block log on open.
		if err := s.st.Close(); err != nil {
			s.logger.Warn("Closing the trace store for a reopen", zap.Error(err))
		}
		s.st = nil
	}
	st, err := s.open()
	if err != nil {
		return fmt.Errorf("reopen trace store: %w", err)
	}
	if len(s.catalogKeys) > 0 {
		st.CatalogAttributeValues(s.catalogKeys...)
	}
	s.st = st
	s.logger.Info("Trace store reopened after a write failure", zap.Duration("took", time.Since(start)))
	return nil
}

// close closes the store, unless it is broken: then Badger's files are left as a
// crash would leave them (every acknowledged write is durable), since closing would
// touch the broken DB.
func (s *Store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	s.st = nil
	if st == nil || s.broken != nil {
		return nil
	}
	return st.Close()
}

// current returns the open store for metrics, or nil.
func (s *Store) current() *badgerstore.Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.broken != nil {
		return nil
	}
	return s.st
}

// removeEmptyBadgerFiles removes the empty value-log and memtable files in dir: Badger
// creates each at its full size at once, so an empty one is what a failed creation
// left (its truncate failed), holding nothing, and Badger refuses to open a directory
// with one. Call it only while no Badger has dir open.
func removeEmptyBadgerFiles(dir string, logger *zap.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (!strings.HasSuffix(name, ".vlog") && !strings.HasSuffix(name, ".mem")) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.Remove(path); err != nil {
			logger.Warn("Cannot remove the empty file a failed Badger file creation left", zap.String("file", path), zap.Error(err))
			continue
		}
		logger.Warn("Removed the empty file a failed Badger file creation left", zap.String("file", path))
	}
}

// WriteTraces implements storage.Writer.
func (s *Store) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	err = st.WriteTraces(ctx, td)
	s.release()
	s.noteWriteErr(err)
	return err
}

// WriteTracesEncoded implements storage.EncodedWriter.
func (s *Store) WriteTracesEncoded(ctx context.Context, td ptrace.Traces, raw []byte) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	err = st.WriteTracesEncoded(ctx, td, raw)
	s.release()
	s.noteWriteErr(err)
	return err
}

// GetTrace implements storage.Reader.
func (s *Store) GetTrace(ctx context.Context, traceID pcommon.TraceID) (ptrace.Traces, error) {
	st, err := s.get()
	if err != nil {
		return ptrace.Traces{}, err
	}
	defer s.release()
	return st.GetTrace(ctx, traceID)
}

// GetServices implements storage.Reader.
func (s *Store) GetServices(ctx context.Context) ([]string, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.GetServices(ctx)
}

// GetOperations implements storage.Reader.
func (s *Store) GetOperations(ctx context.Context, q storage.OperationQuery) ([]storage.Operation, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.GetOperations(ctx, q)
}

// FindTraces implements storage.Reader.
func (s *Store) FindTraces(ctx context.Context, q storage.TraceQuery) ([]ptrace.Traces, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.FindTraces(ctx, q)
}

// FindTraceIDs implements storage.Reader.
func (s *Store) FindTraceIDs(ctx context.Context, q storage.TraceQuery) ([]pcommon.TraceID, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.FindTraceIDs(ctx, q)
}

// ScanTraceIDs implements storage.TraceIDScanner when the store does.
func (s *Store) ScanTraceIDs(ctx context.Context, since time.Time, fn func(pcommon.TraceID) bool) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	defer s.release()
	return st.ScanTraceIDs(ctx, since, fn)
}

// SearchTraces implements storage.Searcher.
func (s *Store) SearchTraces(ctx context.Context, q storage.TraceQuery, depth storage.SearchDepth) (storage.SearchResult, error) {
	st, err := s.get()
	if err != nil {
		return storage.SearchResult{}, err
	}
	defer s.release()
	return st.SearchTraces(ctx, q, depth)
}

// EstimateTraces implements storage.TraceCounter.
func (s *Store) EstimateTraces(ctx context.Context, q storage.TraceQuery) (storage.TraceEstimate, error) {
	st, err := s.get()
	if err != nil {
		return storage.TraceEstimate{}, err
	}
	defer s.release()
	return st.EstimateTraces(ctx, q)
}

// GetTraceSummary implements storage.SummaryReader.
func (s *Store) GetTraceSummary(ctx context.Context, traceID pcommon.TraceID) (storage.TraceSummary, error) {
	st, err := s.get()
	if err != nil {
		return storage.TraceSummary{}, err
	}
	defer s.release()
	return st.GetTraceSummary(ctx, traceID)
}

// GetDependencies implements storage.DependencyReader.
func (s *Store) GetDependencies(ctx context.Context, endTs time.Time, lookback time.Duration) ([]storage.DependencyLink, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.GetDependencies(ctx, endTs, lookback)
}

// DeleteTrace implements storage.TraceDeleter.
func (s *Store) DeleteTrace(ctx context.Context, traceID pcommon.TraceID) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	err = st.DeleteTrace(ctx, traceID)
	s.release()
	s.noteWriteErr(err)
	return err
}

// WriteRollups implements storage.RollupWriter.
func (s *Store) WriteRollups(ctx context.Context, b storage.RollupBatch) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	err = st.WriteRollups(ctx, b)
	s.release()
	s.noteWriteErr(err)
	return err
}

// HasRollups implements storage.RollupReader.
func (s *Store) HasRollups() bool {
	st, err := s.get()
	if err != nil {
		return false
	}
	defer s.release()
	return st.HasRollups()
}

// ReadRED implements storage.RollupReader.
func (s *Store) ReadRED(ctx context.Context, q storage.RollupQuery) ([]storage.REDRollup, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.ReadRED(ctx, q)
}

// ReadEdges implements storage.RollupReader.
func (s *Store) ReadEdges(ctx context.Context, q storage.RollupQuery) ([]storage.EdgeRollup, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.ReadEdges(ctx, q)
}

// CompactRollups merges old rollup deltas (the analytics stage's optional ability).
func (s *Store) CompactRollups(ctx context.Context, now time.Time) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	err = st.CompactRollups(ctx, now)
	s.release()
	s.noteWriteErr(err)
	return err
}

// PutAlertState implements storage.AlertStateStore.
func (s *Store) PutAlertState(ctx context.Context, doc []byte) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	err = st.PutAlertState(ctx, doc)
	s.release()
	s.noteWriteErr(err)
	return err
}

// GetAlertState implements storage.AlertStateStore.
func (s *Store) GetAlertState(ctx context.Context) ([]byte, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.GetAlertState(ctx)
}

// CatalogAttributeValues implements storage.AttributeValueReader; the keys are kept
// for a reopened store.
func (s *Store) CatalogAttributeValues(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catalogKeys = append(s.catalogKeys, keys...)
	if s.st != nil && s.broken == nil {
		s.st.CatalogAttributeValues(keys...)
	}
}

// GetAttributeValues implements storage.AttributeValueReader.
func (s *Store) GetAttributeValues(ctx context.Context, q storage.AttributeValuesQuery) ([]string, error) {
	st, err := s.get()
	if err != nil {
		return nil, err
	}
	defer s.release()
	return st.GetAttributeValues(ctx, q)
}

// Stats returns the open store's counters (zero while none is open). They restart
// from zero after a reopen.
func (s *Store) Stats() badgerstore.Stats {
	if st := s.current(); st != nil {
		return st.Stats()
	}
	return badgerstore.Stats{}
}

// DiskSize returns the open store's bytes on disk (zero while none is open).
func (s *Store) DiskSize() (lsm, vlog int64) {
	if st := s.current(); st != nil {
		return st.DiskSize()
	}
	return 0, 0
}
