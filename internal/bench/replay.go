package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spoortrace/spoor/internal/benchdata"
)

// replay sends telemetrygen-shaped OTLP requests (512 spans, traces of spansPerTrace
// spans, 10 span attributes) over streams gRPC connections for d. It costs the sender
// about a microsecond per span, where telemetrygen's SDK pipeline costs tens: on two
// cores shared with spoor, only a cheap sender shows how fast spoor can store.
func replay(endpoint string, streams int, d time.Duration, spansPerTrace int) error {
	deadline := time.Now().Add(d)
	errs := make(chan error, streams)
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			errs <- replayStream(endpoint, deadline, spansPerTrace, seed)
		}(uint64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func replayStream(endpoint string, deadline time.Time, spansPerTrace int, seed uint64) error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s: %w", endpoint, err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	td := benchdata.TelemetrygenShaped(512, spansPerTrace)
	req := ptraceotlp.NewExportRequestFromTraces(td)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	failures := 0
	for time.Now().Before(deadline) {
		benchdata.Refresh(spans, spansPerTrace, rng, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Export(ctx, req)
		cancel()
		if err != nil {
			// Spoor refused or failed: the sender would retry; count it and go on.
			failures++
			if failures > 100 {
				return fmt.Errorf("replay: more than 100 failed exports, last: %w", err)
			}
		}
	}
	return nil
}
