package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/internal/otlpwire"
	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/storagetest"
)

// TestConformanceChunked runs the suite with blocks cut into chunks of 512 bytes: every
// batch of more than a span or two is several chunks, read one at a time.
func TestConformanceChunked(t *testing.T) {
	storagetest.RunAll(t, func(t *testing.T, dir string) storagetest.Store {
		s, err := Open(dir, Options{NoSyncWrites: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		s.chunkTarget = 512
		return s
	})
}

// TestConformanceChunkedFromRequestBytes: the same, every block a request's own bytes.
func TestConformanceChunkedFromRequestBytes(t *testing.T) {
	storagetest.RunAll(t, func(t *testing.T, dir string) storagetest.Store {
		s, err := Open(dir, Options{NoSyncWrites: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		s.chunkTarget = 512
		return encodedStore{s}
	})
}

// TestConformanceCodec1 runs the suite on blocks of codec 1, as stores written before
// codec 2 hold.
func TestConformanceCodec1(t *testing.T) {
	storagetest.RunAll(t, func(t *testing.T, dir string) storagetest.Store {
		s, err := Open(dir, Options{NoSyncWrites: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		s.chunkTarget = 0
		return s
	})
}

// storedBlocks returns the stored value of every block.
func storedBlocks(t *testing.T, s *Store) [][]byte {
	t.Helper()
	var out [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixBlock}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMixedCodecs: a store holding codec 1 blocks (written before codec 2) and codec 2
// ones reads every trace of both, by ID and in searches, before and after a restart
// that rebuilds the index head from the blocks.
func TestMixedCodecs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute)
	var batches []ptrace.Traces
	for i := range 6 {
		s.chunkTarget = []int{0, defaultChunkTarget, 1 << 10}[i%3]
		td := telemetrygenBatch(uint64(i+1), 500, 5, now.Add(time.Duration(i)*time.Second))
		if err := s.WriteTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, td)
	}
	codecs := map[byte]int{}
	chunks := map[int]bool{}
	for _, v := range storedBlocks(t, s) {
		codecs[v[0]]++
		frames, err := blockFrames(v, nil)
		if err != nil {
			t.Fatal(err)
		}
		chunks[len(frames)] = true
	}
	if codecs[codecZstdProto] != 2 || codecs[codecZstdChunks] != 4 || len(chunks) != 3 {
		t.Fatalf("blocks by codec %v, chunk counts %v: want 2 of codec 1, 4 of codec 2 in two chunk counts", codecs, chunks)
	}
	check := func(s *Store) {
		t.Helper()
		for _, td := range batches {
			spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			for i := 0; i < spans.Len(); i += 5 {
				id := spans.At(i).TraceID()
				got, err := s.GetTrace(ctx, id)
				if err != nil || got.SpanCount() != 5 {
					t.Fatalf("GetTrace(%x) = %d spans, %v", id, got.SpanCount(), err)
				}
				for _, sp := range got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().All() {
					if sp.TraceID() != id {
						t.Fatalf("GetTrace(%x) returned a span of %x", id, sp.TraceID())
					}
				}
			}
		}
		res, err := s.SearchTraces(ctx, storage.TraceQuery{ServiceName: "telemetrygen", Limit: 1000,
			StartTimeMin: now.Add(-time.Minute), StartTimeMax: now.Add(time.Minute)}, storage.WithSpans)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Traces) != 600 {
			t.Fatalf("search found %d traces, want 600", len(res.Traces))
		}
		for i, td := range res.Traces {
			if td.SpanCount() != 5 {
				t.Fatalf("search: trace %x has %d spans", res.Summaries[i].TraceID, td.SpanCount())
			}
		}
	}
	check(s)
	crash(t, s) // the head is rebuilt from the blocks, of both codecs
	if s, err = Open(dir, Options{NoSyncWrites: true}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.indexReplayed.Load() != 6 {
		t.Fatalf("%d blocks re-indexed, want 6", s.indexReplayed.Load())
	}
	check(s)
}

// TestEncodeBlock: the chunks of a codec 2 block each hold the traces ChunkOf assigns
// them, the batch's raw encoding split; decoded whole, the block is the batch's spans.
func TestEncodeBlock(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	td := telemetrygenBatch(3, 512, 5, time.Now())
	var m ptrace.ProtoMarshaler
	raw, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	var bs blockScratch
	var rows []tableRow
	perTrace := map[pcommon.TraceID]int{}
	gid := map[pcommon.TraceID]int32{}
	for _, sp := range td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().All() {
		g, ok := gid[sp.TraceID()]
		if !ok {
			g = int32(len(rows))
			gid[sp.TraceID()] = g
			rows = append(rows, tableRow{id: sp.TraceID()})
		}
		bs.gids = append(bs.gids, g)
		perTrace[sp.TraceID()]++
	}
	for _, target := range []int{0, 1 << 20, 16 << 10, 4 << 10, 100} {
		s.chunkTarget = target
		v := s.encodeBlock(nil, raw, rows, &bs)
		frames, err := blockFrames(v, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := chunkCount(len(raw), target)
		if len(frames) != want || (target == 0) != (v[0] == codecZstdProto) {
			t.Fatalf("target %d: codec %d, %d chunks, want %d", target, v[0], len(frames), want)
		}
		var u ptrace.ProtoUnmarshaler
		total := 0
		for c, f := range frames {
			b, err := s.decompressFrame(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			part, err := u.UnmarshalTraces(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, rs := range part.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, sp := range ss.Spans().All() {
						if otlpwire.ChunkOf(sp.TraceID(), len(frames)) != c {
							t.Fatalf("target %d: trace %v in chunk %d", target, sp.TraceID(), c)
						}
					}
				}
			}
			total += part.SpanCount()
		}
		blk, err := s.decodeBlock(v)
		if err != nil {
			t.Fatal(err)
		}
		if total != 512 || blk.td.SpanCount() != 512 || len(blk.traces) != len(rows) {
			t.Fatalf("target %d: chunks hold %d spans, decoded block %d spans of %d traces", target, total, blk.td.SpanCount(), len(blk.traces))
		}
		for _, r := range rows {
			b, err := s.decompressChunkOf(v, r.id, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, n, err := otlpwire.FilterTrace(nil, b, r.id)
			if err != nil || n != perTrace[r.id] {
				t.Fatalf("target %d: trace %v: %d spans in its chunk, %v", target, r.id, n, err)
			}
		}
	}
	// A batch whose spans do not match the writer's list is stored as one chunk.
	s.chunkTarget = 100
	v := s.encodeBlock(nil, raw, rows, &blockScratch{gids: bs.gids[1:]})
	if frames, err := blockFrames(v, nil); err != nil || len(frames) != 1 {
		t.Fatalf("mismatched span list: %d chunks, %v", len(frames), err)
	}
}

func TestBlockFramesRefusesBadHeaders(t *testing.T) {
	good := []byte{codecZstdChunks, 2, 1, 2, 'a', 'b', 'c'}
	if frames, err := blockFrames(good, nil); err != nil || !slices.EqualFunc(frames, [][]byte{[]byte("a"), []byte("bc")}, bytes.Equal) {
		t.Fatalf("good header: %q, %v", frames, err)
	}
	for _, v := range [][]byte{
		nil,
		{},
		{3, 1, 2},
		{codecZstdChunks},
		{codecZstdChunks, 0},
		{codecZstdChunks, 0x80},
		{codecZstdChunks, 2, 1},
		{codecZstdChunks, 2, 1, 2, 'a', 'b'},
		{codecZstdChunks, 2, 1, 2, 'a', 'b', 'c', 'd'},
		{codecZstdChunks, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		binary.AppendUvarint([]byte{codecZstdChunks}, 1<<62),
	} {
		if _, err := blockFrames(v, nil); err == nil {
			t.Errorf("blockFrames(%x): no error", v)
		}
	}
}

// FuzzBlockValue: any stored value decodes to an error or to spans, never a panic.
func FuzzBlockValue(f *testing.F) {
	s, err := Open(f.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	td := telemetrygenBatch(5, 40, 4, time.Now())
	var m ptrace.ProtoMarshaler
	raw, _ := m.MarshalTraces(td)
	var bs blockScratch
	for i := range 40 {
		bs.gids = append(bs.gids, int32(i/4))
	}
	rows := make([]tableRow, 10)
	for i := range rows {
		rows[i].id = td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(4 * i).TraceID()
	}
	for _, target := range []int{0, 1 << 10, 200} {
		s.chunkTarget = target
		v := s.encodeBlock(nil, raw, rows, &bs)
		f.Add(v)
		f.Add(v[:len(v)/2])
	}
	f.Add([]byte{codecZstdChunks, 3, 0, 0, 0})
	id := rows[0].id
	f.Fuzz(func(t *testing.T, v []byte) {
		frames, err := blockFrames(v, nil)
		if err != nil {
			return
		}
		if len(frames) == 0 {
			t.Fatal("no frames, no error")
		}
		_, _ = s.decompressChunkOf(v, id, nil)
		_, _ = s.decodeBlock(v)
	})
}
