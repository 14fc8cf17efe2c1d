package storageext

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/storage/badgerstore"
)

// Extension owns one open trace store.
type Extension struct {
	cfg       *Config
	telemetry component.TelemetrySettings

	mu       sync.Mutex
	store    *Store
	guard    *WriteGuard
	reg      metric.Registration
	guardReg metric.Registration
	fatal    sync.Once
}

func newExtension(cfg *Config, ts component.TelemetrySettings) *Extension {
	return &Extension{cfg: cfg, telemetry: ts}
}

// guardInterval is how often the write guard measures free space and probes the data
// directory.
const guardInterval = 500 * time.Millisecond

// Start opens the store.
func (e *Extension) Start(_ context.Context, host component.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store != nil {
		return errors.New("trace store already started")
	}
	opts := badgerstore.Options{
		Retention:        e.cfg.Retention,
		NoSyncWrites:     !e.cfg.SyncWrites,
		MaxDiskBytes:     e.cfg.MaxDiskBytes,
		ValueLogFileSize: e.cfg.ValueLogFileSize,
		MemTableSize:     e.cfg.MemTableSize,
		NoDependencies:   !e.cfg.Dependencies,
		Logger:           e.telemetry.Logger,
	}
	st, err := openStore(e.cfg.Directory, e.telemetry.Logger, func() (*badgerstore.Store, error) {
		return badgerstore.Open(e.cfg.Directory, opts)
	})
	if err != nil {
		return fmt.Errorf("open trace store: %w", err)
	}
	meter := e.telemetry.MeterProvider.Meter("github.com/spoortrace/spoor/storage")
	reg, err := registerMetrics(meter, st)
	if err != nil {
		_ = st.close()
		return err
	}
	guard := newWriteGuard(e.cfg.Directory, e.cfg.MinFreeDiskBytes)
	// The largest file Badger creates as it writes: a value-log or memtable file, each
	// made at twice its configured size (defaults 256 MiB and 32 MiB).
	vlog, mem := e.cfg.ValueLogFileSize, e.cfg.MemTableSize
	if vlog == 0 {
		vlog = 256 << 20
	}
	if mem == 0 {
		mem = 32 << 20
	}
	probeSize := 2 * max(vlog, mem)
	guard.probe = func() error { return probeDir(e.cfg.Directory, probeSize) }
	guard.recover = func() bool { return e.recoverStore(st, host) }
	guard.onTick = func() {
		if err := st.Broken(); err != nil {
			e.reportFatal(host, err)
		}
	}
	guardReg, err := registerGuardMetrics(meter, guard)
	if err != nil {
		_ = reg.Unregister()
		_ = st.close()
		return err
	}
	guard.start(guardInterval)
	e.store, e.reg, e.guard, e.guardReg = st, reg, guard, guardReg
	return nil
}

// recoverStore reopens the store after a failed write, the data directory taking
// writes again. A broken store (store.go) cannot be reopened in place: that is
// reported as a fatal error, which stops the collector, once.
func (e *Extension) recoverStore(st *Store, host component.Host) bool {
	if err := st.Broken(); err != nil {
		e.reportFatal(host, err)
		return false
	}
	if err := st.reopen(); err != nil {
		e.telemetry.Logger.Error("Reopening the trace store after a write failure", zap.Error(err))
		return false
	}
	return true
}

// reportFatal reports, once, that the store is broken: the collector then stops (and
// Shutdown leaves the broken DB as a crash would).
func (e *Extension) reportFatal(host component.Host, err error) {
	e.fatal.Do(func() {
		e.telemetry.Logger.Error("Trace store broken: stopping", zap.Error(err))
		componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
	})
}

// Shutdown closes the store. It is safe without Start and safe twice.
func (e *Extension) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store == nil {
		return nil
	}
	var errs []error
	if e.reg != nil {
		errs = append(errs, e.reg.Unregister())
	}
	if e.guardReg != nil {
		errs = append(errs, e.guardReg.Unregister())
	}
	e.guard.shutdown()
	errs = append(errs, e.store.close())
	e.store, e.reg, e.guard, e.guardReg = nil, nil, nil, nil
	return errors.Join(errs...)
}

// Store returns the store, or nil before Start and after Shutdown.
func (e *Extension) Store() *Store {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.store
}

// Guard returns the store's write guard, or nil before Start and after Shutdown.
func (e *Extension) Guard() *WriteGuard {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.guard
}

// GetExtension finds the trace store extension id among the host's extensions.
func GetExtension(host component.Host, id component.ID) (*Extension, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("trace store extension %q is not configured (add it to service.extensions)", id)
	}
	se, ok := ext.(*Extension)
	if !ok {
		return nil, fmt.Errorf("extension %q is a %T, not a %s extension", id, ext, Type)
	}
	return se, nil
}

// GetStore finds the trace store extension id among the host's extensions and returns
// its open store. Components call it from their Start, which runs after every
// extension has started.
func GetStore(host component.Host, id component.ID) (*Store, error) {
	se, err := GetExtension(host, id)
	if err != nil {
		return nil, err
	}
	st := se.Store()
	if st == nil {
		return nil, fmt.Errorf("trace store extension %q has not started", id)
	}
	return st, nil
}

func registerMetrics(m metric.Meter, st *Store) (metric.Registration, error) {
	disk, err := m.Int64ObservableGauge("spoor_storage_disk_bytes",
		metric.WithDescription("Bytes the trace store takes on disk, by part (lsm, vlog)."),
		metric.WithUnit("By"))
	if err != nil {
		return nil, fmt.Errorf("create storage disk gauge: %w", err)
	}
	spans, err := m.Int64ObservableCounter("spoor_storage_spans_written",
		metric.WithDescription("Spans committed to the trace store since start."))
	if err != nil {
		return nil, fmt.Errorf("create storage spans counter: %w", err)
	}
	dropped, err := m.Int64ObservableCounter("spoor_storage_retention_buckets_dropped",
		metric.WithDescription("Hour buckets of traces dropped by retention (expired, or over max_disk_bytes) since start."))
	if err != nil {
		return nil, fmt.Errorf("create retention buckets counter: %w", err)
	}
	reclaimed, err := m.Int64ObservableCounter("spoor_storage_retention_reclaimed_bytes",
		metric.WithDescription("Bytes on disk that retention passes (bucket drops and value-log GC) gave back since start."),
		metric.WithUnit("By"))
	if err != nil {
		return nil, fmt.Errorf("create retention reclaimed counter: %w", err)
	}
	passes, err := m.Int64ObservableCounter("spoor_storage_retention_passes",
		metric.WithDescription("Retention passes run since start."))
	if err != nil {
		return nil, fmt.Errorf("create retention passes counter: %w", err)
	}
	passDur, err := m.Float64ObservableGauge("spoor_storage_retention_pass_duration",
		metric.WithDescription("Duration of the last retention pass."), metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("create retention pass duration gauge: %w", err)
	}
	stall, err := m.Float64ObservableGauge("spoor_storage_retention_write_stall",
		metric.WithDescription("Time the last retention pass held writes while dropping buckets."), metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("create retention write stall gauge: %w", err)
	}
	headSpans, err := m.Int64ObservableGauge("spoor_storage_index_head_spans",
		metric.WithDescription("Spans whose search postings are in the in-memory index head, not yet flushed as segments."))
	if err != nil {
		return nil, fmt.Errorf("create index head gauge: %w", err)
	}
	segments, err := m.Int64ObservableGauge("spoor_storage_index_segments",
		metric.WithDescription("Search index segments on disk."))
	if err != nil {
		return nil, fmt.Errorf("create index segments gauge: %w", err)
	}
	flushes, err := m.Int64ObservableCounter("spoor_storage_index_flushes",
		metric.WithDescription("Search index head flushes since start, by outcome (ok, failed)."))
	if err != nil {
		return nil, fmt.Errorf("create index flushes counter: %w", err)
	}
	valuesDropped, err := m.Int64ObservableCounter("spoor_storage_attribute_values_dropped",
		metric.WithDescription("Attribute values not added to the value catalog (Zipkin autocomplete, remote services) because their service already had 1,000 values of that key."))
	if err != nil {
		return nil, fmt.Errorf("create attribute values dropped counter: %w", err)
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		lsm, vlog := st.DiskSize()
		o.ObserveInt64(disk, lsm, metric.WithAttributes(partLSM))
		o.ObserveInt64(disk, vlog, metric.WithAttributes(partVlog))
		s := st.Stats()
		o.ObserveInt64(spans, s.SpansWritten)
		o.ObserveInt64(dropped, s.BucketsDropped)
		o.ObserveInt64(reclaimed, s.BytesReclaimed)
		o.ObserveInt64(passes, s.RetentionPasses)
		o.ObserveFloat64(passDur, s.LastRetentionPass.Seconds())
		o.ObserveFloat64(stall, s.LastDropStall.Seconds())
		o.ObserveInt64(headSpans, int64(s.Index.HeadSpans))
		o.ObserveInt64(segments, int64(s.Index.Segments))
		o.ObserveInt64(flushes, s.IndexFlushes, metric.WithAttributes(outcomeOK))
		o.ObserveInt64(flushes, s.IndexFlushFailures, metric.WithAttributes(outcomeFailed))
		o.ObserveInt64(valuesDropped, s.AttributeValuesDropped)
		return nil
	}, disk, spans, dropped, reclaimed, passes, passDur, stall, headSpans, segments, flushes, valuesDropped)
}

func registerGuardMetrics(m metric.Meter, g *WriteGuard) (metric.Registration, error) {
	free, err := m.Int64ObservableGauge("spoor_storage_disk_free_bytes",
		metric.WithDescription("Free bytes on the data directory's file system."), metric.WithUnit("By"))
	if err != nil {
		return nil, fmt.Errorf("create disk free gauge: %w", err)
	}
	reserve, err := m.Int64ObservableGauge("spoor_storage_disk_reserve_bytes",
		metric.WithDescription("Bytes the store's memory-mapped files may still claim on disk."), metric.WithUnit("By"))
	if err != nil {
		return nil, fmt.Errorf("create disk reserve gauge: %w", err)
	}
	accepting, err := m.Int64ObservableGauge("spoor_storage_accepting_writes",
		metric.WithDescription("1 while the store takes writes; 0 while it refuses them (too little disk space, a data directory that does not take writes, a failed write not yet recovered from)."))
	if err != nil {
		return nil, fmt.Errorf("create accepting writes gauge: %w", err)
	}
	refused, err := m.Int64ObservableCounter("spoor_storage_refused_spans",
		metric.WithDescription("Spans refused with a retryable error while the store did not take writes (disk too full to write safely, I/O errors)."))
	if err != nil {
		return nil, fmt.Errorf("create refused spans counter: %w", err)
	}
	failures, err := m.Int64ObservableCounter("spoor_storage_write_failures",
		metric.WithDescription("Store writes that failed (I/O errors and the like; refusals for disk space not included)."))
	if err != nil {
		return nil, fmt.Errorf("create write failures counter: %w", err)
	}
	probeFails, err := m.Int64ObservableCounter("spoor_storage_write_probe_failures",
		metric.WithDescription("Probes of the data directory (create a file the size of Badger's next one, write and fsync a block) that failed."))
	if err != nil {
		return nil, fmt.Errorf("create write probe failures counter: %w", err)
	}
	recoveries, err := m.Int64ObservableCounter("spoor_storage_write_recoveries",
		metric.WithDescription("Times the store was reopened and took writes again after a failed write."))
	if err != nil {
		return nil, fmt.Errorf("create write recoveries counter: %w", err)
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(free, g.free.Load())
		o.ObserveInt64(reserve, g.reserve.Load())
		a := int64(1)
		if !g.accepting() {
			a = 0
		}
		o.ObserveInt64(accepting, a)
		o.ObserveInt64(refused, g.refusals.Load())
		o.ObserveInt64(failures, g.failures.Load())
		o.ObserveInt64(probeFails, g.probeFails.Load())
		o.ObserveInt64(recoveries, g.recoveries.Load())
		return nil
	}, free, reserve, accepting, refused, failures, probeFails, recoveries)
}
