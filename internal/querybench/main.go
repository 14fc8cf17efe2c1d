// Command querybench is the query half of `make bench`: it fills a Badger trace store
// with telemetrygen-shaped traces (or opens one already filled), serves the query API on
// a loopback port, and measures what a client of each search surface feels — p50 and p99
// of a whole HTTP request, JSON encoding and transfer included — with limit 20, and of
// trace by ID on each surface.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spoortrace/spoor/internal/benchdata"
	"github.com/spoortrace/spoor/query"
	"github.com/spoortrace/spoor/storage"
	"github.com/spoortrace/spoor/storage/badgerstore"
)

func main() {
	var o options
	flag.IntVar(&o.spans, "spans", 5_000_000, "spans to write into a fresh store")
	flag.IntVar(&o.services, "services", 50, "services")
	flag.IntVar(&o.opsPerService, "ops-per-service", 20, "operations per service")
	flag.IntVar(&o.queries, "queries", 200, "requests per surface")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured requests to this file")
	flag.StringVar(&o.only, "only", "", "measure only the surfaces whose name contains this")
	flag.StringVar(&o.dir, "dir", "", "store directory; when it already holds traces they are used as they are (default: a temporary store, filled, removed after)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "querybench:", err)
		os.Exit(1)
	}
}

type options struct {
	spans, services, opsPerService, queries int
	dir, cpuprofile, only                   string
}

const limit = 20

// fill writes o.spans benchdata spans.
func fill(ctx context.Context, st *badgerstore.Store, o options) error {
	w := benchdata.New(o.spans, o.services, o.opsPerService, "querybench")
	for written := 0; written < o.spans; {
		td := w.Batch()
		if err := st.WriteTraces(ctx, td); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		written += td.SpanCount()
	}
	return nil
}

func run(o options) error {
	ctx := context.Background()
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "spoor-querybench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	st, err := badgerstore.Open(dir, badgerstore.Options{NoSyncWrites: true})
	if err != nil {
		return err
	}
	defer st.Close()
	services, err := st.GetServices(ctx)
	if err != nil {
		return err
	}
	if len(services) == 0 {
		t0 := time.Now()
		if err := fill(ctx, st, o); err != nil {
			return err
		}
		fmt.Printf("spoor query benchmark: filled %d spans in %.0f s\n", o.spans, time.Since(t0).Seconds())
		if services, err = st.GetServices(ctx); err != nil {
			return err
		}
	} else {
		fmt.Printf("spoor query benchmark: store %s as it is\n", dir)
	}
	ops := map[string][]string{}
	for _, s := range services {
		list, err := st.GetOperations(ctx, storage.OperationQuery{ServiceName: s})
		if err != nil {
			return err
		}
		for _, op := range list {
			ops[s] = append(ops[s], op.Name)
		}
	}
	now := time.Now()
	ids, err := st.FindTraceIDs(ctx, storage.TraceQuery{StartTimeMin: now.Add(-48 * time.Hour), StartTimeMax: now, Limit: 1000})
	if err != nil || len(ids) == 0 {
		return fmt.Errorf("no traces to look up (%v)", err)
	}

	api := query.New(st, query.Options{})
	api.SetReady(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := api.Server(ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "querybench: serve:", err)
		}
	}()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

	rng := rand.New(rand.NewPCG(3, 4))
	svc := func() string { return services[rng.IntN(len(services))] }
	op := func(s string) string { return ops[s][rng.IntN(len(ops[s]))] }
	end := time.Now().Add(time.Minute)
	start := end.Add(-benchdata.Window - time.Hour)
	us := func(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	rfc := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339Nano)) }
	n := strconv.Itoa(limit)
	id := func() string { return ids[rng.IntN(len(ids))].String() }
	surfaces := []struct {
		name string
		path func() string
	}{
		{"Jaeger  /api/traces service", func() string {
			return "/api/traces?service=" + url.QueryEscape(svc()) + "&start=" + us(start) + "&end=" + us(end) + "&limit=" + n
		}},
		{"Jaeger  /api/traces service+operation", func() string {
			s := svc()
			return "/api/traces?service=" + url.QueryEscape(s) + "&operation=" + url.QueryEscape(op(s)) + "&start=" + us(start) + "&end=" + us(end) + "&limit=" + n
		}},
		{"Jaeger  /api/traces service+tags (1 in 3)", func() string {
			return "/api/traces?service=" + url.QueryEscape(svc()) + "&tags=" + url.QueryEscape(`{"customer.tier":"`+benchdata.Tiers[rng.IntN(3)]+`"}`) +
				"&start=" + us(start) + "&end=" + us(end) + "&limit=" + n
		}},
		{"Jaeger  /api/v3/traces service", func() string {
			return "/api/v3/traces?query.serviceName=" + url.QueryEscape(svc()) + "&query.startTimeMin=" + rfc(start) + "&query.startTimeMax=" + rfc(end) + "&query.searchDepth=" + n
		}},
		{"Jaeger  /api/v3/trace-summaries service", func() string {
			return "/api/v3/trace-summaries?query.serviceName=" + url.QueryEscape(svc()) + "&query.startTimeMin=" + rfc(start) + "&query.startTimeMax=" + rfc(end) + "&query.searchDepth=" + n
		}},
		{"Zipkin  /api/v2/traces serviceName", func() string {
			return "/api/v2/traces?serviceName=" + url.QueryEscape(svc()) + "&endTs=" + ms(end) + "&lookback=" + strconv.FormatInt((benchdata.Window+time.Hour).Milliseconds(), 10) + "&limit=" + n
		}},
		{"Zipkin  /api/v2/traces annotationQuery (1 in 3)", func() string {
			return "/api/v2/traces?serviceName=" + url.QueryEscape(svc()) + "&annotationQuery=" + url.QueryEscape("customer.tier="+benchdata.Tiers[rng.IntN(3)]) +
				"&endTs=" + ms(end) + "&lookback=" + strconv.FormatInt((benchdata.Window+time.Hour).Milliseconds(), 10) + "&limit=" + n
		}},
		{"Spoor   /spoor/api/v1/search service", func() string {
			return "/spoor/api/v1/search?service=" + url.QueryEscape(svc()) + "&start=" + rfc(start) + "&end=" + rfc(end) + "&limit=" + n
		}},
		{"Spoor   /spoor/api/v1/search trace ≥ 20ms, errors", func() string {
			return "/spoor/api/v1/search?service=" + url.QueryEscape(svc()) + "&minTraceDuration=20ms&traceStatus=error&start=" + rfc(start) + "&end=" + rfc(end) + "&limit=" + n
		}},
		{"Spoor   /spoor/api/v1/search status unset", func() string {
			return "/spoor/api/v1/search?service=" + url.QueryEscape(svc()) + "&status=unset&start=" + rfc(start) + "&end=" + rfc(end) + "&limit=" + n
		}},
		// benchdata has no span with status OK: the worst case, every span of the service
		// in the window is read.
		{"Spoor   /spoor/api/v1/search status ok (none stored)", func() string {
			return "/spoor/api/v1/search?service=" + url.QueryEscape(svc()) + "&status=ok&start=" + rfc(start) + "&end=" + rfc(end) + "&limit=" + n
		}},
		{"Spoor   /spoor/api/v1/search attrMatch regex", func() string {
			return "/spoor/api/v1/search?service=" + url.QueryEscape(svc()) + "&attrMatch=" + url.QueryEscape("user.id=^user-1") + "&start=" + rfc(start) + "&end=" + rfc(end) + "&limit=" + n
		}},
		{"Spoor   /spoor/api/v1/flows service+operation, 200 traces", func() string {
			s := svc()
			return "/spoor/api/v1/flows?service=" + url.QueryEscape(s) + "&operation=" + url.QueryEscape(op(s)) + "&start=" + ms(start) + "&end=" + ms(end) + "&limit=200"
		}},
		{"by ID   /api/traces/{id}", func() string { return "/api/traces/" + id() }},
		{"by ID   /api/v3/traces/{id}", func() string { return "/api/v3/traces/" + id() }},
		{"by ID   /api/v2/trace/{id}", func() string { return "/api/v2/trace/" + id() }},
		{"by ID   /spoor/api/v1/traces/{id}/summary", func() string { return "/spoor/api/v1/traces/" + id() + "/summary" }},
		// The low half alone: Zipkin's 64-bit lookup, which without the store's
		// TraceIDLow64Finder checks the newest 20,000 trace IDs of the last day, listed
		// from the index (storage.TraceIDScanner).
		{"by ID   /api/v2/trace/{low 16 hex} (fallback)", func() string { return "/api/v2/trace/" + id()[16:] }},
	}
	fmt.Printf("  HTTP on loopback, gzip accepted, limit %d, %d requests each; targets: search p99 < 50 ms, trace by ID p99 < 5 ms\n", limit, o.queries)
	// One unmeasured round first, so that the first surface does not pay for cold caches.
	for _, s := range surfaces {
		for i := 0; i < max(o.queries/10, 1); i++ {
			resp, err := client.Get(base + s.path())
			if err != nil {
				return fmt.Errorf("warm up %s: %w", s.name, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, s := range surfaces {
		if !strings.Contains(s.name, o.only) {
			continue
		}
		lat := make([]time.Duration, 0, o.queries)
		var bytes int64
		cpu0 := cpuTime()
		for i := 0; i < o.queries; i++ {
			path := s.path()
			t0 := time.Now()
			resp, err := client.Get(base + path)
			if err != nil {
				return fmt.Errorf("GET %s: %w", path, err)
			}
			nb, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
			lat = append(lat, time.Since(t0))
			// 404 is the v3 answer to a search without matches.
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
				return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
			}
			bytes += nb
		}
		cpu := cpuTime() - cpu0
		slices.Sort(lat)
		fmt.Printf("  %-48s p50 %7.2f ms  p99 %7.2f ms   (%6.0f bytes per answer, %6.2f ms CPU per request)\n", s.name,
			float64(lat[len(lat)/2])/1e6, float64(lat[len(lat)*99/100])/1e6, float64(bytes)/float64(o.queries), float64(cpu)/1e6/float64(o.queries))
	}
	return nil
}

// cpuTime is the process's CPU time (user and system), client and server alike: the
// latencies above depend on what else the machine runs, the CPU much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
