package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestDiskFull runs Spoor on a 96 MiB tmpfs of the test's own, fills the file system
// behind its back, and checks that Spoor refuses new spans with a retryable error
// (HTTP 503 with Retry-After, gRPC UNAVAILABLE) instead of crashing — Badger writes
// through memory maps, and a full file system kills the process with SIGBUS — keeps
// answering queries, says so in /healthz and /metrics, and takes spans again by itself
// once space returns. No root needed: spoor runs in a user and mount namespace of its
// own (unshare), where it may mount the tmpfs; the test reaches that file system
// through /proc/<pid>/root.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(mnt, "data")
	ep := freeEndpoints(t)
	// Small Badger files so the tmpfs can hold them: a 16 MiB value log and an 8 MiB
	// memtable log, both sparse; 8 MiB kept free beyond them.
	s := startSpoorVia(t, privateTmpfs(mnt, "96m"), ep, dataDir, []string{
		"--set", "extensions::spoor_storage::value_log_file_size=8388608",
		"--set", "extensions::spoor_storage::mem_table_size=4194304",
		"--set", "extensions::spoor_storage::min_free_disk_bytes=8388608",
	}, http.DefaultClient, "http://"+ep.Query+"/healthz")
	// The tmpfs as the test sees it: through spoor's root, in spoor's mount namespace.
	fs := fmt.Sprintf("/proc/%d/root%s", s.cmd.Process.Pid, mnt)
	if err := syscall.Statfs(fs, new(syscall.Statfs_t)); err != nil {
		t.Fatalf("reach spoor's tmpfs at %s: %v", fs, err)
	}

	send := func(b byte) int {
		t.Helper()
		td, _ := goodTraces(b)
		resp, err := http.Post("http://"+ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(protoBody(t, td)))
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		return resp.StatusCode
	}
	if code := send(1); code != http.StatusOK {
		t.Fatalf("first span: %d", code)
	}
	_, tid1 := goodTraces(1)

	// Fill the file system, leaving less than the store needs.
	var st syscall.Statfs_t
	if err := syscall.Statfs(fs, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if total := int64(st.Blocks) * int64(st.Bsize); total != 96<<20 {
		t.Fatalf("%s is %d bytes, not the 96 MiB tmpfs", fs, total)
	}
	ballast := filepath.Join(fs, "ballast")
	if err := os.WriteFile(ballast, make([]byte, free-4<<20), 0o600); err != nil {
		t.Fatalf("fill the tmpfs: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	code := 0
	for i := byte(2); time.Now().Before(deadline); i++ {
		if code = send(i); code == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable {
		t.Fatalf("with the disk full, ingest answered %d, want 503", code)
	}
	conn, err := grpc.NewClient(ep.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	td, _ := goodTraces(99)
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctxTimeout(t, 10*time.Second), ptraceotlp.NewExportRequestFromTraces(td))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC export with the disk full: %v, want UNAVAILABLE", err)
	}
	// A burst of 20 MiB of spans: written into the full tmpfs through Badger's maps it
	// would kill spoor (SIGBUS, measured without the guard); refused, it costs nothing.
	big := ptrace.NewTraces()
	rs := big.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "disk-full")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 1000; i++ {
		td, _ := goodTraces(byte(i))
		sp := spans.AppendEmpty()
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(sp)
		sp.SetSpanID(pcommon.SpanID{9, byte(i >> 8), byte(i), 1, 2, 3, 4, 5})
		sp.Attributes().PutStr("payload", strings.Repeat(string(rune('a'+i%26)), 1024))
	}
	bigBody := protoBody(t, big)
	for i := 0; i < 20; i++ {
		resp, err := http.Post("http://"+ep.OTLPHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(bigBody))
		if err != nil {
			t.Fatalf("POST burst: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("burst request %d with the disk full: %d, want 503", i, resp.StatusCode)
		}
	}
	s.alive()
	if _, ok := s.trace(tid1.String(), time.Second); !ok {
		t.Error("the stored trace is not readable while the disk is full")
	}
	hcode, hbody := getBody(t, "http://"+ep.Query+"/healthz")
	if hcode != http.StatusServiceUnavailable || !strings.Contains(hbody, "refusing writes") {
		t.Errorf("/healthz with the disk full: %d %q, want 503 naming the refusal", hcode, hbody)
	}
	m := s.metrics()
	if v := metricValue(m, "spoor_storage_accepting_writes", ""); v != 0 {
		t.Errorf("spoor_storage_accepting_writes = %v with the disk full, want 0", v)
	}
	if v := metricValue(m, "spoor_storage_refused_spans", ""); v < 2 {
		t.Errorf("spoor_storage_refused_spans = %v, want the refused spans counted", v)
	}

	// Space returns: Spoor takes spans again by itself.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for i := byte(120); time.Now().Before(deadline); i++ {
		if code = send(i); code == http.StatusOK {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Fatalf("after space returned, ingest answered %d, want 200", code)
	}
	if hcode, hbody := getBody(t, "http://"+ep.Query+"/healthz"); hcode != http.StatusOK {
		t.Errorf("/healthz after recovery: %d %q", hcode, hbody)
	}
	s.alive()
	s.stop()
}

// privateTmpfs is a wrapper for startSpoorVia: spoor runs in a new user and mount
// namespace (unshare, mapping the caller to root there: no privileges needed) where
// a tmpfs of size is mounted on mnt; outside, mnt stays an empty directory.
func privateTmpfs(mnt, size string) []string {
	return []string{"unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
		`mount -t tmpfs -o size=` + size + ` tmpfs "$1" && shift && exec "$@"`, "sh", mnt}
}
