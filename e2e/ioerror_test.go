//go:build linux

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestIOError injects a real I/O fault into a running spoor: the test lowers spoor's
// RLIMIT_FSIZE (prlimit on its PID; no privileges needed for a process of one's own),
// so the kernel refuses with EFBIG to let it create a file the size of Badger's next
// value-log file — as a failing disk (EIO) or a read-only remount (EROFS) would
// refuse it. Two senders (OTLP gRPC and OTLP HTTP) write all along. While the fault
// lasts, their exports get retryable answers (UNAVAILABLE / 503), queries keep
// working, and /healthz and /metrics say why; when the fault is lifted, writes resume
// by themselves, and every span acknowledged before, during and after is readable.
func TestIOError(t *testing.T) {
	t.Parallel()
	ep := freeEndpoints(t)
	// A 1 MiB value log (2 MiB files) rotates every few hundred requests, so the fault
	// is met soon; a 64 MiB memtable (its 128 MiB file made at start) does not rotate.
	s := startSpoorArgs(t, ep, t.TempDir(), []string{
		"--set", "extensions::spoor_storage::value_log_file_size=1048576",
		"--set", "extensions::spoor_storage::mem_table_size=67108864",
	})
	pid := s.cmd.Process.Pid

	conn, err := grpc.NewClient(ep.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	grpcClient := ptraceotlp.NewGRPCClient(conn)

	var (
		mu        sync.Mutex
		acked     []pcommon.TraceID
		seq       atomic.Int64
		okCount   [2]atomic.Int64 // by transport: 0 gRPC, 1 HTTP
		refused   [2]atomic.Int64
		stop      = make(chan struct{})
		senders   sync.WaitGroup
		badAnswer atomic.Pointer[string]
	)
	send := func(transport int) {
		defer senders.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			td, ids := ioBatch(uint32(seq.Add(1)), 20)
			var ok, retryable bool
			var answer string
			if transport == 0 {
				_, err := grpcClient.Export(ctxTimeout(t, 30*time.Second), ptraceotlp.NewExportRequestFromTraces(td))
				c := status.Code(err)
				ok, retryable = err == nil, c == codes.Unavailable || c == codes.ResourceExhausted
				answer = "gRPC " + c.String() + ": " + status.Convert(err).Message()
			} else {
				body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
				resp, err := http.Post("http://"+ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					msg := "HTTP: " + err.Error()
					badAnswer.Store(&msg)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
				retryable = resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests
				answer = "HTTP " + resp.Status + ": " + truncate(string(b), 300)
			}
			switch {
			case ok:
				okCount[transport].Add(1)
				mu.Lock()
				acked = append(acked, ids...)
				mu.Unlock()
			case retryable:
				refused[transport].Add(1)
				time.Sleep(20 * time.Millisecond) // a client would wait out Retry-After
			default:
				badAnswer.Store(&answer)
			}
		}
	}
	senders.Add(2)
	go send(0)
	go send(1)
	stopSenders := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		senders.Wait()
	}
	defer stopSenders()
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				stopSenders()
				t.Fatalf("%s: not within %v (ok %d/%d, refused %d/%d)", what, d,
					okCount[0].Load(), okCount[1].Load(), refused[0].Load(), refused[1].Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("acknowledged spans before the fault", 20*time.Second, func() bool {
		return okCount[0].Load() >= 20 && okCount[1].Load() >= 20
	})

	// The fault: no file of spoor's may grow past 1 MiB.
	restore := limitFileSize(t, pid, 1<<20)
	faultAt := [2]int64{refused[0].Load(), refused[1].Load()}
	// At once, before the guard's next probe (every 500 ms) may notice, 1.5 MiB of
	// spans: more than a value-log file holds, so Badger itself meets the fault unless
	// the probe was quicker. Either way the answer is retryable and nothing is lost.
	bigTD, bigIDs := ioBatch(1<<31, 1500)
	bigBody, _ := ptraceotlp.NewExportRequestFromTraces(bigTD).MarshalProto()
	code, body := post(t, "http://"+ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", "", bigBody)
	switch code {
	case http.StatusOK:
		mu.Lock()
		acked = append(acked, bigIDs...)
		mu.Unlock()
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
	default:
		t.Errorf("1.5 MiB export at the fault: %d %q, want 200 or a retryable refusal", code, truncate(body, 300))
	}
	t.Logf("1.5 MiB export at the fault: %d", code)
	var health string
	waitFor("/healthz 503 with the fault", 10*time.Second, func() bool {
		code, body := getBody(t, "http://"+ep.Query+"/healthz")
		health = body
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(health, "does not take writes") && !strings.Contains(health, "last write failed") {
		t.Errorf("/healthz with the fault: %q, want the reason", health)
	}
	waitFor("retryable refusals on both transports", 10*time.Second, func() bool {
		return refused[0].Load() > faultAt[0] && refused[1].Load() > faultAt[1]
	})
	// Nothing is stored while the fault lasts (healthz is 503 throughout), queries go on.
	mu.Lock()
	some := acked[len(acked)/2]
	mu.Unlock()
	if _, ok := s.trace(some.String(), time.Second); !ok {
		t.Errorf("an acknowledged trace is not readable during the fault")
	}
	var services jaegerEnvelope[[]string]
	if code := s.getJSON("/api/services", &services); code != http.StatusOK || !contains(services.Data, "io-fault") {
		t.Errorf("/api/services during the fault: %d %v", code, services.Data)
	}
	m := s.metrics()
	if v := metricValue(m, "spoor_storage_accepting_writes", ""); v != 0 {
		t.Errorf("spoor_storage_accepting_writes = %v during the fault, want 0", v)
	}
	if metricValue(m, "spoor_storage_write_probe_failures", "") == 0 && metricValue(m, "spoor_storage_write_failures", "") == 0 {
		t.Error("neither spoor_storage_write_probe_failures nor spoor_storage_write_failures counts the fault")
	}
	if v := metricValue(m, "spoor_storage_refused_spans", ""); v == 0 {
		t.Error("spoor_storage_refused_spans = 0 during the fault")
	}
	time.Sleep(2 * time.Second) // the fault lasts; senders keep trying
	s.alive()

	restore()
	okAt := [2]int64{okCount[0].Load(), okCount[1].Load()}
	waitFor("writes resuming after the fault", 20*time.Second, func() bool {
		return okCount[0].Load() > okAt[0]+10 && okCount[1].Load() > okAt[1]+10
	})
	if code, body := getBody(t, "http://"+ep.Query+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after the fault: %d %q", code, body)
	}
	stopSenders()
	if a := badAnswer.Load(); a != nil {
		t.Errorf("an export got a non-retryable answer: %s", *a)
	}
	t.Logf("acknowledged %d+%d requests, refused %d+%d (gRPC+HTTP); %s",
		okCount[0].Load(), okCount[1].Load(), refused[0].Load(), refused[1].Load(), health)
	m = s.metrics()
	t.Logf("write failures %v, probe failures %v, recoveries %v", metricValue(m, "spoor_storage_write_failures", ""),
		metricValue(m, "spoor_storage_write_probe_failures", ""), metricValue(m, "spoor_storage_write_recoveries", ""))

	missing := 0
	for _, id := range acked {
		if _, ok := s.trace(id.String(), 0); !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged traces are not readable", missing, len(acked))
	}
	s.alive()
	s.stop()
}

// ioBatch is n one-span traces with incompressible attributes, so that the value log
// fills.
func ioBatch(seq uint32, n int) (ptrace.Traces, []pcommon.TraceID) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "io-fault")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	ids := make([]pcommon.TraceID, n)
	now := time.Now()
	payload := make([]byte, 512)
	for i := range ids {
		id := pcommon.TraceID{0x10, 0x10, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq), byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9}
		sp := spans.AppendEmpty()
		sp.SetTraceID(id)
		sp.SetSpanID(pcommon.SpanID{1, byte(seq >> 16), byte(seq >> 8), byte(seq), 5, 6, 7, byte(i)})
		sp.SetName("write")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		_, _ = rand.Read(payload)
		sp.Attributes().PutStr("payload", hex.EncodeToString(payload))
		ids[i] = id
	}
	return td, ids
}

// limitFileSize sets process pid's soft RLIMIT_FSIZE to limit (prlimit(2): allowed on
// a process of the same user without privileges) and returns the function that puts
// the old limit back, also run when the test ends.
func limitFileSize(t *testing.T, pid int, limit uint64) (restore func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := prlimit(pid, syscall.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatalf("prlimit(%d): %v", pid, err)
	}
	if err := prlimit(pid, syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: old.Max}, nil); err != nil {
		t.Fatalf("prlimit(%d, RLIMIT_FSIZE=%d): %v", pid, limit, err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := prlimit(pid, syscall.RLIMIT_FSIZE, &old, nil); err != nil && err != syscall.ESRCH {
				t.Errorf("restore RLIMIT_FSIZE of %d: %v", pid, err)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}

func prlimit(pid, resource int, set, old *syscall.Rlimit) error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(resource),
		uintptr(unsafe.Pointer(set)), uintptr(unsafe.Pointer(old)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
