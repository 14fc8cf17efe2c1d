package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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
	td := telemetrygenShaped(512, spansPerTrace)
	req := ptraceotlp.NewExportRequestFromTraces(td)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	failures := 0
	for time.Now().Before(deadline) {
		refresh(spans, spansPerTrace, rng, time.Now())
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

// telemetrygenShaped builds a request like telemetrygen's: one resource, one scope,
// traces of one root and children, 10 string attributes on every span.
func telemetrygenShaped(n, spansPerTrace int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bench")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("telemetrygen")
	spans := ss.Spans()
	for i := 0; i < n; i++ {
		sp := spans.AppendEmpty()
		if i%spansPerTrace == 0 {
			sp.SetName("lets-go")
			sp.SetKind(ptrace.SpanKindClient)
		} else {
			sp.SetName("okey-dokey-" + fmt.Sprint(i%spansPerTrace-1))
			sp.SetKind(ptrace.SpanKindServer)
		}
		attrs := sp.Attributes()
		attrs.PutStr("network.peer.address", "1.2.3.4")
		attrs.PutStr("peer.service", "telemetrygen-server")
		for a := 0; a < 10; a++ {
			attrs.PutStr(fmt.Sprintf("attr%d", a), fmt.Sprintf("value-%d", a))
		}
	}
	return td
}

// refresh gives every trace of spans fresh random IDs and current timestamps.
func refresh(spans ptrace.SpanSlice, spansPerTrace int, rng *rand.Rand, now time.Time) {
	var tid pcommon.TraceID
	var root pcommon.SpanID
	for i := 0; i < spans.Len(); i++ {
		sp := spans.At(i)
		var sid pcommon.SpanID
		binary.LittleEndian.PutUint64(sid[:], rng.Uint64()|1)
		if i%spansPerTrace == 0 {
			binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
			binary.LittleEndian.PutUint64(tid[8:], rng.Uint64()|1)
			root = sid
			sp.SetParentSpanID(pcommon.SpanID{})
		} else {
			sp.SetParentSpanID(root)
		}
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		start := now.Add(time.Duration(i%spansPerTrace) * 10 * time.Microsecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(123 * time.Microsecond)))
	}
}
