package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/storagetest"
)

// flushingStore flushes the index head into segments after every write, so that the
// conformance suite reads postings from segments (and merged segments) only.
type flushingStore struct{ *Store }

func (f flushingStore) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	if err := f.Store.WriteTraces(ctx, td); err != nil {
		return err
	}
	return f.flushHead()
}

// TestConformanceFromSegments runs the whole conformance suite with every posting in
// a flushed segment, merged in tiers once a bucket has segMergeFanIn of a level.
func TestConformanceFromSegments(t *testing.T) {
	storagetest.RunAll(t, func(t *testing.T, dir string) storagetest.Store {
		s, err := Open(dir, Options{NoSyncWrites: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return flushingStore{s}
	})
}

// TestConformanceBackgroundFlushes runs the suite while the background flusher turns
// the head over after every batch: searches race flushes and merges.
func TestConformanceBackgroundFlushes(t *testing.T) {
	storagetest.RunAll(t, func(t *testing.T, dir string) storagetest.Store {
		s, err := Open(dir, Options{NoSyncWrites: true, HeadMaxSpans: 1})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// crash stops the store the way a killed process does as far as the index goes: the
// head is never flushed.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.flusherStop()
	<-s.flusherDone
	s.flusherStop = nil // Close must not flush
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestIndexRecoversHeadFromBlockLog loses the head (and, in a second round, the head
// on top of flushed and merged segments) and finds every trace again after Open.
func TestIndexRecoversHeadFromBlockLog(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	// Every span in one hour bucket: segments of two buckets would not make a tier, and
	// the test would see no merge whenever it ran in the minutes that put now-30m within
	// 250 s before an hour.
	base := time.Now().Truncate(time.Hour).Add(-30 * time.Minute)
	write := func(s *Store, from, to int) {
		for i := from; i < to; i++ {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "svc")
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{1, byte(i >> 8), byte(i)})
			sp.SetSpanID(pcommon.SpanID{1, byte(i >> 8), byte(i)})
			sp.SetName("op")
			st := base.Add(time.Duration(i) * time.Second)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Millisecond)))
			sp.Attributes().PutStr("n", string(rune('a'+i%20)))
			if err := s.WriteTraces(ctx, td); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
	}
	count := func(s *Store, q storage.TraceQuery) int {
		q.Limit = 10_000
		ids, err := s.FindTraceIDs(ctx, q)
		if err != nil {
			t.Fatalf("FindTraceIDs: %v", err)
		}
		return len(ids)
	}
	s, err := Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	write(s, 0, 100)
	crash(t, s)

	s, err = Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().IndexReplayedBlocks; got != 100 {
		t.Fatalf("re-indexed %d blocks at Open, want 100", got)
	}
	if got := count(s, storage.TraceQuery{ServiceName: "svc"}); got != 100 {
		t.Fatalf("after a crash: %d traces, want 100", got)
	}
	// Flush in pieces: 20 flushes (of 5 spans) make a merged segment of level 1.
	if segMergeFanInL0 > 20 {
		t.Fatalf("20 flushes make no merge with a fan-in of %d", segMergeFanInL0)
	}
	for i := 0; i < 20; i++ {
		write(s, 100+i*5, 105+i*5)
		if err := s.flushHead(); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.IndexMerges == 0 || st.Index.HeadSpans != 0 {
		t.Fatalf("stats after flushes: %+v, want a merge and an empty head", st)
	}
	write(s, 200, 250)
	crash(t, s)

	s, err = Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Stats().IndexReplayedBlocks; got != 50 {
		t.Fatalf("re-indexed %d blocks at Open, want only the 50 written after the last flush", got)
	}
	if got := count(s, storage.TraceQuery{ServiceName: "svc"}); got != 250 {
		t.Fatalf("after the second crash: %d traces, want 250", got)
	}
	if got := count(s, storage.TraceQuery{ServiceName: "svc", Attributes: map[string]string{"n": "c"}}); got != 13 {
		t.Fatalf("attribute n=c: %d traces, want 13", got)
	}
}

// randomEntry makes an entry of field in sg, with a random block, a value of 1 to
// maxLen random bytes (appended to arena) and a start up to below sg's maxStart, and
// the posting a reader should get for it.
func randomEntry(rng *rand.Rand, sg *segment, field uint64, maxLen, below int, arena *[]byte) (segEntry, posting) {
	bi := rng.IntN(len(sg.blocks))
	val := make([]byte, 1+rng.IntN(maxLen))
	for k := range val {
		val[k] = byte(rng.Uint32())
	}
	ms := sg.maxStart - uint64(rng.IntN(below))
	e := segEntry{field: field, maxStart: ms, hash: sg.blocks[bi].ref.hash, block: uint32(bi)}
	off := len(*arena)
	*arena = append(*arena, val...)
	e.setVal(*arena, uint32(off), uint32(len(val)))
	return e, posting{maxStart: ms, ref: sg.blocks[bi].ref, seq: sg.blocks[bi].seq, val: val}
}

// TestSegmentPagesRoundTrip encodes random postings into pages (fields spanning
// several pages included) and reads every field back in order.
func TestSegmentPagesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	sg := &segment{bucket: 10, maxStart: 1 << 40}
	for i := range 300 {
		sg.blocks = append(sg.blocks, headBlock{ref: blockRef{bucket: 10 + uint32(i%2), hash: rng.Uint64()}, seq: uint64(i + 1)})
	}
	var (
		ents  []segEntry
		arena []byte
	)
	want := map[uint64][]posting{}
	for f := range 50 {
		field := rng.Uint64()
		n := 1 + rng.IntN(40)
		if f == 0 {
			n = 3000 // a field far bigger than a page
		}
		for range n {
			e, p := randomEntry(rng, sg, field, 60, 1<<30, &arena)
			ents = append(ents, e)
			want[field] = append(want[field], p)
		}
	}
	slices.SortFunc(ents, compareSegEntry)
	pages, first := encodePages(ents, arena, sg.maxStart, segPageTarget)
	sg.first = first
	if len(pages) < 3 {
		t.Fatalf("%d pages; the test wants a field spanning pages", len(pages))
	}
	for i, pg := range pages {
		// Past the target by at most one entry and one field header.
		if len(pg) > segPageTarget+100 {
			t.Errorf("page %d is %d bytes, target %d", i, len(pg), segPageTarget)
		}
		if i < len(pages)-1 && len(pg) < segPageTarget/2 {
			t.Errorf("page %d is %d bytes: cut too early (target %d)", i, len(pg), segPageTarget)
		}
	}
	for field, w := range want {
		slices.SortFunc(w, comparePosting)
		lo, hi := pagesOf(sg.first, field)
		var got []posting
		for p := lo; p < hi; p++ {
			var err error
			if got, err = pagePostings(sg, pages[p], field, got); err != nil {
				t.Fatalf("page %d: %v", p, err)
			}
		}
		if len(got) != len(w) {
			t.Fatalf("field %x: %d postings, want %d", field, len(got), len(w))
		}
		for i := range w {
			if got[i].maxStart != w[i].maxStart || got[i].ref != w[i].ref || got[i].seq != w[i].seq || string(got[i].val) != string(w[i].val) {
				t.Fatalf("field %x posting %d: got %+v, want %+v", field, i, got[i], w[i])
			}
		}
	}
	// A field that is not there reads nothing.
	lo, hi := pagesOf(sg.first, 12345)
	for p := lo; p < hi; p++ {
		got, err := pagePostings(sg, pages[p], 12345, nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("absent field: %d postings, %v", len(got), err)
		}
	}
}

// TestFieldTableAgreesWithMap checks the open-addressing table against a Go map over
// growth, overwrites and keys that differ only by bucket.
func TestFieldTableAgreesWithMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var ft fieldTable
	want := map[fieldKey]int32{}
	for i := range 50_000 {
		k := fieldKey{hash: rng.Uint64() % 20_000, bucket: uint32(rng.IntN(3))}
		ft.put(k, int32(i))
		want[k] = int32(i)
	}
	for k, v := range want {
		if got, ok := ft.get(k); !ok || got != v {
			t.Fatalf("get(%v) = %d, %v; want %d", k, got, ok, v)
		}
	}
	if _, ok := ft.get(fieldKey{hash: 1 << 60}); ok {
		t.Fatal("found a key never put")
	}
	n := 0
	ft.all(func(k fieldKey, v int32) {
		n++
		if want[k] != v {
			t.Fatalf("all: %v = %d, want %d", k, v, want[k])
		}
	})
	if n != len(want) {
		t.Fatalf("all visited %d keys, want %d", n, len(want))
	}
}

// TestFieldTableReset: a reset table is empty whether it listed its few slots or had
// too many to list, and works as new after, through many rounds and sizes.
func TestFieldTableReset(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	var ft fieldTable
	for round := range 300 {
		n := rng.IntN(3000)
		if round%3 == 0 {
			n = rng.IntN(40) // mostly few keys, as the write path's per-trace table
		}
		want := map[fieldKey]int32{}
		for i := range n {
			k := fieldKey{hash: rng.Uint64(), bucket: uint32(rng.IntN(2))}
			ft.put(k, int32(i))
			want[k] = int32(i)
		}
		for k, v := range want {
			if got, ok := ft.get(k); !ok || got != v {
				t.Fatalf("round %d: get(%v) = %d, %v; want %d", round, k, got, ok, v)
			}
		}
		ft.reset()
		for k := range want {
			if _, ok := ft.get(k); ok {
				t.Fatalf("round %d (%d keys): %v still there after reset", round, n, k)
			}
		}
		left := 0
		ft.all(func(fieldKey, int32) { left++ })
		if left != 0 || ft.n != 0 {
			t.Fatalf("round %d: %d keys (n=%d) after reset", round, left, ft.n)
		}
	}
}

// TestBloom: no false negatives, and about 1% false positives at 10 bits per key.
func TestBloom(t *testing.T) {
	const n = 20000
	b := newBloom(n)
	var h fieldHasher
	for i := range n {
		b.add(h.trace(pcommon.TraceID{8: byte(i), 9: byte(i >> 8), 10: byte(i >> 16), 11: 1}))
	}
	for i := range n {
		if !b.mayContain(h.trace(pcommon.TraceID{8: byte(i), 9: byte(i >> 8), 10: byte(i >> 16), 11: 1})) {
			t.Fatalf("key %d added but not found", i)
		}
	}
	fp := 0
	for i := range n {
		if b.mayContain(h.trace(pcommon.TraceID{8: byte(i), 9: byte(i >> 8), 10: byte(i >> 16), 11: 2})) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.025 {
		t.Fatalf("false positive rate %.3f, want about 0.01", rate)
	}
	// Round trip through a segment directory.
	r := byteReader{b: b.appendTo(nil)}
	var again bloomFilter
	again.decode(&r)
	if r.bad || len(r.b) != 0 || !slices.Equal(again.words, b.words) {
		t.Fatalf("bloom filter did not round-trip")
	}
	if !(bloomFilter{}).mayContain(42) {
		t.Fatalf("an empty filter must say maybe")
	}
}

// TestSummaryAcrossBucketsAndSegments: a trace's fragments in an older bucket's segment
// and in the head (a later bucket) merge into one summary, before and after a restart.
func TestSummaryAcrossBucketsAndSegments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	id := pcommon.TraceID{7, 7, 7}
	batch := func(svc string, start time.Time, n int, spanByte byte) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for k := range n {
			sp := spans.AppendEmpty()
			sp.SetTraceID(id)
			sp.SetSpanID(pcommon.SpanID{spanByte, byte(k + 1)})
			if k > 0 || spanByte != 1 {
				sp.SetParentSpanID(pcommon.SpanID{1, 1})
			}
			sp.SetName(svc + "-op")
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		}
		return td
	}
	early := time.Now().Add(-3 * time.Hour).Truncate(time.Hour).Add(time.Minute)
	if err := s.WriteTraces(ctx, batch("a", early, 3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.flushHead(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats().Index; st.Segments == 0 || st.HeadSpans != 0 {
		t.Fatalf("after flush: %+v, want the spans in a segment", st)
	}
	late := time.Now().Add(-time.Minute)
	if err := s.WriteTraces(ctx, batch("b", late, 2, 2)); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		sum, err := s.GetTraceSummary(ctx, id)
		if err != nil || sum.SpanCount != 5 || len(sum.Services) != 2 || sum.RootService != "a" {
			t.Fatalf("%s: summary %+v, %v; want 5 spans of a and b, root in a", when, sum, err)
		}
		if d := sum.Duration; d < late.Sub(early) {
			t.Fatalf("%s: trace duration %s, want at least %s", when, d, late.Sub(early))
		}
		td, err := s.GetTrace(ctx, id)
		if err != nil || td.SpanCount() != 5 {
			t.Fatalf("%s: GetTrace = %d spans, %v", when, td.SpanCount(), err)
		}
	}
	check("head and segment")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{NoSyncWrites: true}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check("after restart")
}

func TestUvarintLen(t *testing.T) {
	var buf [binary.MaxVarintLen64]byte
	for _, x := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<63 - 1, 1 << 63, ^uint64(0)} {
		if got, want := uvarintLen(x), binary.PutUvarint(buf[:], x); got != want {
			t.Errorf("uvarintLen(%d) = %d, want %d", x, got, want)
		}
	}
}

// TestWaitIndex flushes a full head before it returns, and the flusher, woken by the
// signal of the head WaitIndex flushed, leaves the next, not yet full, head alone.
func TestWaitIndex(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true, HeadMaxSpans: 10})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	base := time.Now().Add(-time.Minute)
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "svc")
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{2, byte(i)})
			sp.SetSpanID(pcommon.SpanID{2, byte(i)})
			sp.SetName("op")
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Second)))
			if err := s.WriteTraces(ctx, td); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
	}
	write(0, 10)
	if err := s.WaitIndex(); err != nil {
		t.Fatalf("WaitIndex: %v", err)
	}
	st := s.Stats()
	if st.IndexFlushes != 1 || st.Index.HeadSpans != 0 || st.Index.Segments != 1 {
		t.Fatalf("after WaitIndex: %d flushes, %d spans in the head, %d segments; want 1, 0, 1",
			st.IndexFlushes, st.Index.HeadSpans, st.Index.Segments)
	}
	write(10, 12)
	// A signal left over from the flushed head (maybeFlush sent one at every write past
	// the limit) must not flush the two spans' head.
	select {
	case s.flushSignal <- struct{}{}:
	default:
	}
	time.Sleep(200 * time.Millisecond)
	if st := s.Stats(); st.IndexFlushes != 1 || st.Index.HeadSpans != 2 {
		t.Fatalf("after a stale signal: %d flushes, %d spans in the head; want 1, 2", st.IndexFlushes, st.Index.HeadSpans)
	}
	if err := s.WaitIndex(); err != nil {
		t.Fatalf("WaitIndex: %v", err)
	}
	if st := s.Stats(); st.IndexFlushes != 1 {
		t.Fatalf("WaitIndex flushed a head that is not full: %d flushes", st.IndexFlushes)
	}
}

// TestSegmentPageCodecs reads pages in both codecs: S2, which flushes write, and zstd,
// which posting pages of stores written before them are in. An unknown codec is an
// error, not a page.
func TestSegmentPageCodecs(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSyncWrites: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	page := bytes.Repeat([]byte("a posting page, varints and field hashes "), 100)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	values := map[string][]byte{
		"zstd":    enc.EncodeAll(page, []byte{codecZstdPage}),
		"s2":      append([]byte{codecS2Page}, s2.EncodeBetter(nil, page)...),
		"unknown": append([]byte{9}, page...),
	}
	// A bucket of now: retention, running from Open, drops the buckets of 1970.
	b := bucketOf(uint64(time.Now().UnixNano()))
	for name, v := range values {
		key := appendSegPageKey(nil, b, uint64(len(name)), 0)
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, v) }); err != nil {
			t.Fatal(err)
		}
		txn := s.db.NewTransaction(false)
		got, found, err := s.readSegPage(txn, key)
		txn.Discard()
		switch {
		case name == "unknown":
			if err == nil {
				t.Errorf("%s: read a page: %d bytes", name, len(got))
			}
		case err != nil || !found || !bytes.Equal(got, page):
			t.Errorf("%s: found %v, err %v, %d bytes; want the page's %d", name, found, err, len(got), len(page))
		}
	}
}

// TestMergePages merges random segments' pages and reads every field back from the
// merged pages: the same postings as in the segments, each once. Segments' starts
// overlap, so a field's entries from two segments do not always descend (a second
// part of the field), and some fields outgrow a page.
func TestMergePages(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 20 {
		var (
			group         []*segment
			posts, traces [][][]byte
			want          = map[uint64][]posting{}
			wantTrace     = map[uint64][]posting{}
		)
		fields := make([]uint64, 40)
		for i := range fields {
			fields[i] = rng.Uint64()
		}
		merged := &segment{bucket: 10, level: 1}
		for range 2 + rng.IntN(8) {
			sg := &segment{bucket: 10, maxStart: 1<<40 + uint64(rng.IntN(1<<20))}
			for range 1 + rng.IntN(300) {
				sg.blocks = append(sg.blocks, headBlock{ref: blockRef{bucket: 10, hash: rng.Uint64()}, seq: rng.Uint64N(1 << 30)})
			}
			var pe, te []segEntry
			var arena []byte
			for _, trace := range []bool{false, true} {
				for _, f := range fields[:10+rng.IntN(30)] {
					if trace {
						f ^= 1 // trace fields of their own
					}
					n := rng.IntN(12)
					if round%4 == 0 && f == fields[0] {
						n = 4000 // bigger than a page
					}
					for range n {
						e, p := randomEntry(rng, sg, f, 40, 1<<21, &arena)
						if trace {
							te = append(te, e)
							wantTrace[f] = append(wantTrace[f], p)
						} else {
							pe = append(pe, e)
							want[f] = append(want[f], p)
						}
					}
				}
			}
			slices.SortFunc(pe, compareSegEntry)
			slices.SortFunc(te, compareSegEntry)
			pp, first := encodePages(pe, arena, sg.maxStart, segPageTarget)
			tp, tfirst := encodePages(te, arena, sg.maxStart, tracePageTarget)
			sg.first, sg.tfirst = first, tfirst
			if round%2 == 0 {
				// Segments with their filters (a merge sizes its own from theirs); the
				// others have none, as if it matched everything.
				sg.bloom = newBloom(len(wantTrace))
				for i := range te {
					sg.bloom.add(te[i].field)
				}
			}
			group = append(group, sg)
			posts, traces = append(posts, pp), append(traces, tp)
			merged.maxStart = max(merged.maxStart, sg.maxStart)
			merged.blocks = append(merged.blocks, sg.blocks...)
		}
		// The pages are read and handed on as the merge goes: it never holds them all.
		// Every page is lent to it in a buffer of its own, overwritten when it asks for
		// the cursor's next one, and it must be done with the page it is handed back.
		loaded, emitted, firstEmit := 0, 0, -1
		src := func(gi, p int, dst []byte) ([]byte, bool, error) {
			sg := group[gi]
			loaded++
			pg := posts[gi]
			if p >= len(sg.first) {
				pg, p = traces[gi], p-len(sg.first)
			}
			if round%3 == 1 && p == 0 && len(pg) > 1 {
				return dst, false, nil // a page that is not there is skipped
			}
			out := append(dst[:0], pg[p]...)
			return out, true, nil
		}
		var pages [][]byte
		emit := func(pg []byte) error {
			emitted++
			if firstEmit < 0 {
				firstEmit = loaded
			}
			pages = append(pages, slices.Clone(pg))
			clear(pg)
			return nil
		}
		if round%3 == 1 {
			// The skipped first pages' postings are not in the merge.
			for gi, sg := range group {
				for _, kind := range []struct {
					pages [][]byte
					want  map[uint64][]posting
				}{{posts[gi], want}, {traces[gi], wantTrace}} {
					if len(kind.pages) < 2 {
						continue
					}
					var gone []posting
					var err error
					for f := range kind.want {
						if gone, err = pagePostings(sg, kind.pages[0], f, gone[:0]); err != nil {
							t.Fatal(err)
						}
						for _, g := range gone {
							kind.want[f] = slices.DeleteFunc(kind.want[f], func(p posting) bool {
								return p.seq == g.seq && p.maxStart == g.maxStart && string(p.val) == string(g.val)
							})
						}
					}
				}
			}
		}
		if err := mergePages(group, src, merged, emit); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if emitted > 2 && firstEmit >= loaded {
			t.Fatalf("round %d: the first merged page was handed on after all %d pages were read", round, loaded)
		}
		if len(pages) != merged.pages() {
			t.Fatalf("round %d: %d pages, the directory lists %d", round, len(pages), merged.pages())
		}
		for i, pg := range pages {
			target := segPageTarget
			if i >= len(merged.first) {
				target = tracePageTarget
			}
			if len(pg) > target+100 {
				t.Errorf("round %d: page %d is %d bytes, target %d", round, i, len(pg), target)
			}
		}
		check := func(kind string, want map[uint64][]posting, first []uint64, base int) {
			t.Helper()
			if !slices.IsSorted(first) {
				t.Fatalf("round %d: %s pages' first fields out of order", round, kind)
			}
			for f, w := range want {
				lo, hi := pagesOf(first, f)
				var got []posting
				var err error
				for p := lo; p < hi; p++ {
					if got, err = pagePostings(merged, pages[base+p], f, got); err != nil {
						t.Fatalf("round %d: %s page %d: %v", round, kind, p, err)
					}
				}
				slices.SortFunc(got, comparePosting)
				slices.SortFunc(w, comparePosting)
				if len(got) != len(w) {
					t.Fatalf("round %d: %s field %x: %d postings, want %d", round, kind, f, len(got), len(w))
				}
				for i := range w {
					if got[i].maxStart != w[i].maxStart || got[i].ref != w[i].ref || got[i].seq != w[i].seq || string(got[i].val) != string(w[i].val) {
						t.Fatalf("round %d: %s field %x posting %d: got %+v, want %+v", round, kind, f, i, got[i], w[i])
					}
				}
			}
		}
		check("posting", want, merged.first, 0)
		check("trace", wantTrace, merged.tfirst, len(merged.first))
		for f, w := range wantTrace {
			if len(w) > 0 && !merged.bloom.mayContain(f) {
				t.Fatalf("round %d: the Bloom filter misses trace field %x", round, f)
			}
		}
	}
}

// TestMergePagesDamaged merges segments one of whose pages is damaged — a byte
// changed, or the page cut short — and wants an error or a merge, never a panic; an
// entry naming a block the segment does not have is an error.
func TestMergePagesDamaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var (
		group         []*segment
		posts, traces [][][]byte
	)
	merged := &segment{bucket: 10, level: 1}
	for range 3 {
		sg := &segment{bucket: 10, maxStart: 1<<40 + uint64(rng.IntN(1<<20))}
		for range 20 {
			sg.blocks = append(sg.blocks, headBlock{ref: blockRef{bucket: 10, hash: rng.Uint64()}, seq: rng.Uint64N(1 << 30)})
		}
		var pe, te []segEntry
		var arena []byte
		for f := range uint64(30) {
			for range 1 + rng.IntN(5) {
				e, _ := randomEntry(rng, sg, f<<1, 40, 1<<21, &arena)
				pe = append(pe, e)
				e, _ = randomEntry(rng, sg, f<<1|1, 40, 1<<21, &arena)
				te = append(te, e)
			}
		}
		slices.SortFunc(pe, compareSegEntry)
		slices.SortFunc(te, compareSegEntry)
		pp, first := encodePages(pe, arena, sg.maxStart, 512)
		tp, tfirst := encodePages(te, arena, sg.maxStart, 512)
		sg.first, sg.tfirst = first, tfirst
		group, posts, traces = append(group, sg), append(posts, pp), append(traces, tp)
		merged.maxStart = max(merged.maxStart, sg.maxStart)
		merged.blocks = append(merged.blocks, sg.blocks...)
	}
	run := func(damage func(gi, p int, pg []byte) []byte) error {
		src := func(gi, p int, dst []byte) ([]byte, bool, error) {
			pg := posts[gi]
			if p >= len(group[gi].first) {
				pg, p = traces[gi], p-len(group[gi].first)
			}
			return damage(gi, p, append(dst[:0], pg[p]...)), true, nil
		}
		m := *merged
		return mergePages(group, src, &m, func([]byte) error { return nil })
	}
	if err := run(func(_, _ int, pg []byte) []byte { return pg }); err != nil {
		t.Fatalf("undamaged: %v", err)
	}
	for i := range 500 {
		gi, p := rng.IntN(len(group)), rng.IntN(len(posts[0]))
		at := rng.Int()
		err := run(func(g, q int, pg []byte) []byte {
			if g != gi || q != p || len(pg) == 0 {
				return pg
			}
			if i%2 == 0 {
				pg[at%len(pg)] ^= byte(1 + at>>8%255)
				return pg
			}
			return pg[:at%len(pg)]
		})
		_ = err // either: the damage may leave a valid page
	}
	// Entries of the first segment's first page naming block 20, which it lacks: the
	// first entry's block number is the byte after the part header.
	err := run(func(gi, p int, pg []byte) []byte {
		if gi == 0 && p == 0 {
			r := byteReader{b: pg}
			r.uvarint() // parts
			r.take(8)   // field
			r.uvarint() // n
			r.uvarint() // byte length
			at := len(pg) - len(r.b)
			if pg[at] < 0x80 {
				pg[at] = 20
			}
		}
		return pg
	})
	if !errors.Is(err, errBadSegment) {
		t.Fatalf("an entry naming a block the segment lacks: %v, want errBadSegment", err)
	}
}
