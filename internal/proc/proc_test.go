package proc

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

func TestReadMemoryOfThisProcess(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Anon <= 0 || m.Anon+m.File > m.RSS+m.RSS/10 {
		t.Fatalf("implausible memory of a running test: %+v", m)
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Fatal("memory of no process read")
	}
}

func TestWaitHealthy(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	if err := WaitHealthy(ok.URL, time.Second); err != nil {
		t.Fatal(err)
	}
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer sick.Close()
	if err := WaitHealthy(sick.URL, 200*time.Millisecond); err == nil {
		t.Fatal("a 503 counted as healthy")
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitHealthy("http://"+addr, 200*time.Millisecond); err == nil {
		t.Fatal("nothing listening counted as healthy")
	}
}
