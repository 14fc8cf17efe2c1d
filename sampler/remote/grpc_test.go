package remote

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// grpcClient is a real gRPC client of the extension's SamplingManager, Jaeger's
// generated one.
func grpcClient(t *testing.T, addr string) api_v2.SamplingManagerClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return api_v2.NewSamplingManagerClient(conn)
}

func getGRPC(t *testing.T, c api_v2.SamplingManagerClient, service string) (*api_v2.SamplingStrategyResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.GetSamplingStrategy(ctx, &api_v2.SamplingStrategyParameters{ServiceName: service})
}

// GetSamplingStrategy over gRPC answers, for every service of the fixture and for one it
// does not name, the same strategy as HTTP: the HTTP body decoded by the proto's own JSON
// decoder equals the gRPC message. An empty service name is InvalidArgument, counted.
func TestGRPCServesFileStrategies(t *testing.T) {
	s := startTestServer(t, func(c *Config) {
		c.StrategiesFile = "testdata/strategies.json"
		c.GRPCEndpoint = "127.0.0.1:0"
	})
	client := grpcClient(t, s.ext.grpcAddr)
	for service := range fixtureBodies {
		got, err := getGRPC(t, client, service)
		if err != nil {
			t.Fatalf("service %s: %v", service, err)
		}
		var want api_v2.SamplingStrategyResponse
		if err := jsonpb.UnmarshalString(mustGet(t, s.url+"/?service="+service), &want); err != nil {
			t.Fatalf("decode HTTP body: %v", err)
		}
		if got.String() != want.String() {
			t.Errorf("service %s over gRPC:\n got %s\nwant %s (as HTTP serves it)", service, got, &want)
		}
	}
	if got, err := getGRPC(t, client, "foo"); err != nil || got.OperationSampling == nil || len(got.OperationSampling.PerOperationStrategies) != 3 ||
		got.OperationSampling.PerOperationStrategies[0].ProbabilisticSampling.SamplingRate != 0.6 {
		t.Errorf("service foo: %v %v, want its own op0 at 0.6 first of three operations", got, err)
	}
	_, err := getGRPC(t, client, "")
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty service: %v, want InvalidArgument", err)
	}
	if n := s.counter(t, "spoor_sampling_strategy_requests", "service=foo", "result=ok"); n != 3 {
		t.Errorf("requests for foo counted %d, want 3 (one HTTP, two gRPC)", n)
	}
	if n := s.counter(t, "spoor_sampling_strategy_requests", "result=bad_request"); n != 1 {
		t.Errorf("bad requests counted %d, want 1", n)
	}
}

// A reloaded file is served over gRPC too.
func TestGRPCFollowsReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strategies.json")
	base := time.Now().Add(-time.Hour)
	writeFile(t, path, `{"default_strategy":{"type":"probabilistic","param":0.25}}`, base)
	s := startTestServer(t, func(c *Config) {
		c.StrategiesFile = path
		c.ReloadInterval = 10 * time.Millisecond
		c.GRPCEndpoint = "127.0.0.1:0"
	})
	client := grpcClient(t, s.ext.grpcAddr)
	rate := func() float64 {
		r, err := getGRPC(t, client, "pay")
		if err != nil {
			t.Fatal(err)
		}
		return r.GetProbabilisticSampling().GetSamplingRate()
	}
	if got := rate(); got != 0.25 {
		t.Fatalf("rate %v, want 0.25", got)
	}
	writeFile(t, path, `{"service_strategies":[{"service":"pay","type":"ratelimiting","param":9}]}`, base.Add(time.Second))
	waitFor(t, "the edit to be served over gRPC", func() bool {
		r, err := getGRPC(t, client, "pay")
		return err == nil && r.StrategyType == api_v2.SamplingStrategyType_RATE_LIMITING && r.GetRateLimitingSampling().GetMaxTracesPerSecond() == 9
	})
}

// Start refuses a busy gRPC port (closing the HTTP listener it opened), and Shutdown
// stops the gRPC server and its goroutines, safely twice.
func TestGRPCLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	busy := startTestServer(t, func(c *Config) { c.GRPCEndpoint = "127.0.0.1:0" })
	cfg := createDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.GRPCEndpoint = busy.ext.grpcAddr
	ext, err := newExtension(cfg, componenttest.NewNopTelemetrySettings())
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err == nil {
		t.Fatal("start on a busy gRPC port succeeded")
	}
	cfg.GRPCEndpoint = "127.0.0.1:0"
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("start after a failed start: %v", err)
	}
	if err := busy.ext.Shutdown(context.Background()); err != nil { // before goleak looks
		t.Fatal(err)
	}
	addr := ext.grpcAddr
	func() {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := getGRPC(t, api_v2.NewSamplingManagerClient(conn), "x"); err != nil {
			t.Fatalf("before shutdown: %v", err)
		}
	}()
	for i := range 2 {
		if err := ext.Shutdown(context.Background()); err != nil {
			t.Fatalf("shutdown %d: %v", i+1, err)
		}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := api_v2.NewSamplingManagerClient(conn).GetSamplingStrategy(ctx, &api_v2.SamplingStrategyParameters{ServiceName: "x"}); err == nil {
		t.Error("still serving gRPC after shutdown")
	}
}
