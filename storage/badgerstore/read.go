package badgerstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
)

// GetTrace returns every stored span of the trace, each once.
func (s *Store) GetTrace(ctx context.Context, traceID pcommon.TraceID) (ptrace.Traces, error) {
	var td ptrace.Traces
	var found bool
	err := s.db.View(func(txn *badger.Txn) error {
		var sum summary
		var err error
		td, found, err = s.loadTrace(ctx, txn, traceID, &sum)
		return err
	})
	if err != nil {
		return ptrace.Traces{}, err
	}
	if !found {
		return ptrace.Traces{}, storage.ErrTraceNotFound
	}
	return td, nil
}

// readSummary fills sum; found is false when the trace has no summary.
func readSummary(txn *badger.Txn, traceID pcommon.TraceID, sum *summary) (bool, error) {
	var key [summaryKeyLen]byte
	item, err := txn.Get(appendSummaryKey(key[:0], traceID))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read summary of trace %s: %w", hex.EncodeToString(traceID[:]), err)
	}
	if err := item.Value(sum.decode); err != nil {
		return false, fmt.Errorf("read summary of trace %s: %w", hex.EncodeToString(traceID[:]), err)
	}
	return true, nil
}

// loadTrace reads the summary and then every chunk of the trace within one read
// transaction, so a reader never sees part of a batch.
func (s *Store) loadTrace(ctx context.Context, txn *badger.Txn, traceID pcommon.TraceID, sum *summary) (ptrace.Traces, bool, error) {
	found, err := readSummary(txn, traceID, sum)
	if err != nil || !found {
		return ptrace.Traces{}, false, err
	}
	return s.loadChunks(ctx, txn, traceID, sum)
}

func (s *Store) loadChunks(ctx context.Context, txn *badger.Txn, traceID pcommon.TraceID, sum *summary) (ptrace.Traces, bool, error) {
	td := ptrace.NewTraces()
	chunks := 0
	var prefix [1 + 4 + 16]byte
	for _, b := range sum.buckets {
		if err := ctx.Err(); err != nil {
			return ptrace.Traces{}, false, fmt.Errorf("read trace %s: %w", hex.EncodeToString(traceID[:]), err)
		}
		p := appendChunkPrefix(prefix[:0], b, traceID)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: false})
		for it.Rewind(); it.Valid(); it.Next() {
			if err := it.Item().Value(func(v []byte) error { return s.decodeChunk(v, td) }); err != nil {
				it.Close()
				return ptrace.Traces{}, false, fmt.Errorf("read chunk %x: %w", it.Item().Key(), err)
			}
			chunks++
		}
		it.Close()
	}
	if chunks == 0 {
		return ptrace.Traces{}, false, nil
	}
	dedupeSpans(td)
	return td, true, nil
}

// decodeChunk appends the chunk's resource spans to td.
func (s *Store) decodeChunk(v []byte, td ptrace.Traces) error {
	if len(v) == 0 || v[0] != codecZstdProto {
		return fmt.Errorf("unknown chunk codec (value starts %x)", v[:min(len(v), 1)])
	}
	// A fresh buffer: the decoded traces may alias it.
	raw, err := s.dec.DecodeAll(v[1:], nil)
	if err != nil {
		return fmt.Errorf("decompress chunk: %w", err)
	}
	var u ptrace.ProtoUnmarshaler
	chunk, err := u.UnmarshalTraces(raw)
	if err != nil {
		return fmt.Errorf("decode chunk: %w", err)
	}
	chunk.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	return nil
}

type spanIdentity struct {
	spanID, parentID pcommon.SpanID
	kind             ptrace.SpanKind
	start, end       pcommon.Timestamp
	service          string
}

// dedupeSpans drops spans equal to an earlier one (FORMAT.md: same span ID, parent,
// kind, service, start and end), then scopes and resources left empty.
func dedupeSpans(td ptrace.Traces) {
	seen := make(map[spanIdentity]struct{})
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		service := serviceOf(rs.Resource())
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
				k := spanIdentity{spanID: sp.SpanID(), parentID: sp.ParentSpanID(), kind: sp.Kind(),
					start: sp.StartTimestamp(), end: sp.EndTimestamp(), service: service}
				if _, dup := seen[k]; dup {
					return true
				}
				seen[k] = struct{}{}
				return false
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
}

// GetServices returns the cataloged services, sorted; never nil.
func (s *Store) GetServices(_ context.Context) ([]string, error) {
	now := time.Now().Unix()
	s.catalogMu.RLock()
	out := make([]string, 0, len(s.services))
	for name, exp := range s.services {
		if exp == 0 || exp > now {
			out = append(out, name)
		}
	}
	s.catalogMu.RUnlock()
	slices.Sort(out)
	return out, nil
}

var kindNames = [...]string{
	ptrace.SpanKindUnspecified: "unspecified",
	ptrace.SpanKindInternal:    "internal",
	ptrace.SpanKindServer:      "server",
	ptrace.SpanKindClient:      "client",
	ptrace.SpanKindProducer:    "producer",
	ptrace.SpanKindConsumer:    "consumer",
}

func kindName(k byte) string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unspecified"
}

// GetOperations returns the cataloged operations of q.ServiceName, sorted by name then
// kind; never nil.
func (s *Store) GetOperations(_ context.Context, q storage.OperationQuery) ([]storage.Operation, error) {
	want := -1
	if q.SpanKind != "" {
		for i, n := range kindNames {
			if n == q.SpanKind {
				want = i
			}
		}
		if want < 0 {
			return nil, &storage.InvalidInputError{Reason: fmt.Sprintf("unknown span kind %q", q.SpanKind)}
		}
	}
	now := time.Now().Unix()
	out := []storage.Operation{}
	s.catalogMu.RLock()
	for op, exp := range s.operations {
		if op.service != q.ServiceName || (want >= 0 && int(op.kind) != want) || (exp != 0 && exp <= now) {
			continue
		}
		out = append(out, storage.Operation{Name: op.name, SpanKind: kindName(op.kind)})
	}
	s.catalogMu.RUnlock()
	slices.SortFunc(out, func(a, b storage.Operation) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.SpanKind, b.SpanKind)
	})
	return out, nil
}
