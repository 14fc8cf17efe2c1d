package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/storagetest"
)

func openStore(t *testing.T, dir string) storagetest.Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.RunAll(t, openStore)
}

func TestCloseTwice(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenRefusesUnknownSchema(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("badger.Open: %v", err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte{prefixMeta, metaSchemaVersion}, binary.BigEndian.AppendUint32(nil, 99))
	}); err != nil {
		t.Fatalf("write version: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	_, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "unknown schema version") {
		t.Fatalf("Open with schema 99: err = %v, want unknown schema version", err)
	}
}

func TestOpenRefusesSchemaV1(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("badger.Open: %v", err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte{prefixMeta, metaSchemaVersion}, binary.BigEndian.AppendUint32(nil, 1))
	}); err != nil {
		t.Fatalf("write version: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	_, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 1") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open of a v1 directory: err = %v, want a refusal naming schema version 1 and the directory", err)
	}
}

func TestStatsDoNotDoubleCountRetries(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	td := telemetrygenBatch(1, 64, 4, time.Now())
	for range 3 {
		if err := s.WriteTraces(context.Background(), td); err != nil {
			t.Fatalf("WriteTraces: %v", err)
		}
	}
	st := s.Stats()
	if st.SpansWritten != 64 || st.BlocksWritten != 1 || st.BlocksDeduplicated != 2 {
		t.Fatalf("stats after 3 identical writes = %+v, want 64 spans, 1 block, 2 deduplicated", st)
	}
	// The summary's span count was merged once.
	id := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
	var sum summary
	txn, ist := s.begin()
	found, err := s.traceSummary(txn, ist, id, &sum, math.MaxUint64)
	txn.Discard()
	if err != nil || !found {
		t.Fatalf("read summary: found %v, %v", found, err)
	}
	if sum.spans != 4 || !sum.hasRoot || sum.rootName != "root-op" || sum.rootService != "telemetrygen" {
		t.Fatalf("summary = %+v, want 4 spans and root telemetrygen/root-op", sum)
	}
}

// TestLargeBatch writes a batch far bigger than Badger's transaction limits allow in
// entries (4 MiB memtable), naming thousands of new operations: the block's own
// transaction stays three keys, the names go in transactions of their own.
func TestLargeBatch(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	td := telemetrygenBatch(7, 40000, 4, time.Now())
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	const ops = 20000
	for i := 0; i < spans.Len(); i++ {
		spans.At(i).SetName(fmt.Sprintf("op-%05d", i%ops))
	}
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatalf("WriteTraces: %v", err)
	}
	if st := s.Stats(); st.SpansWritten != 40000 || st.BlocksWritten != 1 {
		t.Fatalf("stats = %+v, want 40000 spans written in one block", st)
	}
	id := spans.At(39999).TraceID()
	got, err := s.GetTrace(context.Background(), id)
	if err != nil || got.SpanCount() != 4 {
		t.Fatalf("GetTrace(last trace) = %d spans, %v", got.SpanCount(), err)
	}
	listed, err := s.GetOperations(context.Background(), storage.OperationQuery{ServiceName: "telemetrygen"})
	if err != nil || len(listed) != ops {
		t.Fatalf("GetOperations = %d operations, %v; want %d", len(listed), err, ops)
	}
	// After a restart too: the names are on disk.
	dir := s.dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{NoSyncWrites: true, MemTableSize: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	listed, err = s.GetOperations(context.Background(), storage.OperationQuery{ServiceName: "telemetrygen"})
	if err != nil || len(listed) != ops {
		t.Fatalf("after reopening, GetOperations = %d operations, %v; want %d", len(listed), err, ops)
	}
}

func TestDiskSize(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.WriteTraces(context.Background(), telemetrygenBatch(3, 512, 4, time.Now())); err != nil {
		t.Fatalf("WriteTraces: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	lsm, vlog, err := dirSizes(dir)
	if err != nil {
		t.Fatalf("dirSizes: %v", err)
	}
	if lsm == 0 {
		t.Fatalf("DiskSize = %d + %d after writing 512 spans and closing, want a non-empty LSM", lsm, vlog)
	}
}

// telemetrygenBatch builds spans like telemetrygen's: traces of one root and
// perTrace-1 children, 10 identical attributes on every span.
func telemetrygenBatch(seed uint64, spans, perTrace int, start time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "telemetrygen")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	out := ss.Spans()
	out.EnsureCapacity(spans)
	var tid pcommon.TraceID
	var root pcommon.SpanID
	for i := 0; i < spans; i++ {
		sp := out.AppendEmpty()
		if i%perTrace == 0 {
			binary.BigEndian.PutUint64(tid[:8], seed)
			binary.BigEndian.PutUint64(tid[8:], uint64(i/perTrace)+1)
		}
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], seed<<32|uint64(i)+1)
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		ts := start.Add(time.Duration(i) * time.Microsecond)
		if i%perTrace == 0 {
			root = sid
			sp.SetName("root-op")
			sp.SetKind(ptrace.SpanKindServer)
		} else {
			sp.SetParentSpanID(root)
			sp.SetName("okey-dokey-0")
			sp.SetKind(ptrace.SpanKindClient)
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(ts.Add(123 * time.Microsecond)))
		a := sp.Attributes()
		a.PutStr("net.peer.ip", "1.2.3.4")
		a.PutStr("peer.service", "telemetrygen-server")
		a.PutStr("k1", "v1")
		a.PutStr("k2", "v2")
		a.PutStr("k3", "v3")
		a.PutStr("k4", "v4")
		a.PutStr("k5", "v5")
		a.PutStr("k6", "v6")
		a.PutStr("k7", "v7")
		a.PutStr("k8", "v8")
	}
	return td
}

// encodedStore writes every batch through WriteTracesEncoded, its bytes encoded as Go's
// protobuf encodes them (fields in another order than pdata's), as a request's are.
type encodedStore struct{ *Store }

func (s encodedStore) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return err
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		return err
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&req)
	if err != nil {
		return err
	}
	return s.WriteTracesEncoded(ctx, td, raw)
}

// TestConformanceFromRequestBytes runs the conformance suite with every block stored as
// a request's own bytes (storageexporter use_request_bytes).
func TestConformanceFromRequestBytes(t *testing.T) {
	storagetest.RunAll(t, func(t *testing.T, dir string) storagetest.Store {
		t.Helper()
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return encodedStore{s}
	})
}

// Every store catalogs the operations written to it, whatever the process's other
// stores hold: the write path remembers, per store, which operations its catalog has
// (writeScratch.opFresh), and its scratches are shared by all stores. Operations kinds
// tell apart: the same name as a server and as a client span is two operations.
func TestOperationCatalogPerStore(t *testing.T) {
	batch := func() ptrace.Traces {
		td := telemetrygenBatch(3, 400, 4, time.Now())
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := 0; i < spans.Len(); i++ {
			spans.At(i).SetName(fmt.Sprintf("op-%d", i%10))
			spans.At(i).SetKind(ptrace.SpanKind(1 + i/10%2)) // internal, server
		}
		return td
	}
	ops := func(s *Store) map[string]bool {
		listed, err := s.GetOperations(context.Background(), storage.OperationQuery{ServiceName: "telemetrygen"})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, o := range listed {
			m[o.Name+"/"+o.SpanKind] = true
		}
		return m
	}
	var stores []*Store
	for i := range 3 {
		s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
		// Each store's batches go through the same scratches as the others'.
		for range 2 {
			for _, st := range stores {
				if err := st.WriteTraces(context.Background(), batch()); err != nil {
					t.Fatal(err)
				}
			}
		}
		for j, st := range stores {
			if got := ops(st); len(got) != 20 {
				t.Fatalf("after store %d opened: store %d lists %d operations, want 20: %v", i, j, len(got), got)
			}
		}
	}
}
