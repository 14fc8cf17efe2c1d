package proc

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
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

func TestFreeAddrAvoidsTheEphemeralRange(t *testing.T) {
	elo, ehi := readEphemeral()
	seen := map[string]bool{}
	for range 200 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s given twice", addr)
		}
		seen[addr] = true
		_, portText, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portText)
		if port >= elo && port <= ehi {
			t.Fatalf("%s is in the ephemeral range [%d, %d]", addr, elo, ehi)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is not free: %v", addr, err)
		}
		ln.Close()
	}
}

func TestPickRange(t *testing.T) {
	for _, c := range []struct{ elo, ehi, lo, hi int }{
		{32768, 60999, 10000, 32768},
		{1024, 50000, 50001, 65536},
		{1024, 65000, 1024, 65536},
	} {
		if lo, hi := pickRange(c.elo, c.ehi); lo != c.lo || hi != c.hi {
			t.Errorf("pickRange(%d, %d) = [%d, %d), want [%d, %d)", c.elo, c.ehi, lo, hi, c.lo, c.hi)
		}
	}
}
