package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Extension serves sampling strategies.
type Extension struct {
	cfg       *Config
	telemetry component.TelemetrySettings
	requests  metric.Int64Counter
	reloads   metric.Int64Counter

	mu       sync.Mutex
	handler  *handler
	server   *http.Server
	grpc     *grpc.Server  // nil without grpc_endpoint
	addr     string        // where it listens, for tests that bind port 0
	grpcAddr string        // where gRPC listens
	done     chan struct{} // closed when the server and the reload loop have stopped
	stop     chan struct{} // closed to stop the reload loop
}

var _ extension.Extension = (*Extension)(nil)

func newExtension(cfg *Config, ts component.TelemetrySettings) (*Extension, error) {
	m := ts.MeterProvider.Meter("github.com/spoortrace/spoor/sampler/remote")
	requests, err := m.Int64Counter("spoor_sampling_strategy_requests",
		metric.WithDescription("Remote sampling strategy requests, by service (at most 256 names, then _other) and result."))
	if err != nil {
		return nil, fmt.Errorf("create sampling strategy requests counter: %w", err)
	}
	reloads, err := m.Int64Counter("spoor_sampling_strategy_file_reloads",
		metric.WithDescription("Reloads of the sampling strategies file after it changed, by result (ok, error: the last good version is kept)."))
	if err != nil {
		return nil, fmt.Errorf("create sampling strategy reloads counter: %w", err)
	}
	return &Extension{cfg: cfg, telemetry: ts, requests: requests, reloads: reloads}, nil
}

// fileVersion identifies a version of the strategies file by what a poll sees.
type fileVersion struct {
	modTime time.Time
	size    int64
}

// Start reads and checks the strategies file, then starts serving. A bad file fails Start.
func (e *Extension) Start(ctx context.Context, host component.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.server != nil {
		return errors.New("sampling strategies server already started")
	}
	strats := defaultStrategies(e.cfg.DefaultSamplingPercentage)
	var version fileVersion
	if e.cfg.StrategiesFile != "" {
		var err error
		strats, version, err = loadFile(e.cfg.StrategiesFile, e.cfg.DefaultSamplingPercentage)
		if err != nil {
			return err
		}
	}
	h := newHandler(e.requests, newServed(strats, e.cfg.NumericStrategyType))

	ln, err := e.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listen for sampling strategy requests on %s: %w", e.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	srv, err := e.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), e.telemetry, h)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("create sampling strategies server: %w", err)
	}
	var gln net.Listener
	if e.cfg.GRPCEndpoint != "" {
		if gln, err = net.Listen("tcp", e.cfg.GRPCEndpoint); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen for gRPC sampling strategy requests on %s: %w", e.cfg.GRPCEndpoint, err)
		}
		e.grpc = grpc.NewServer()
		api_v2.RegisterSamplingManagerServer(e.grpc, grpcService{h: h})
		e.grpcAddr = gln.Addr().String()
	}
	e.handler, e.server, e.stop, e.done = h, srv, make(chan struct{}), make(chan struct{})
	e.addr = ln.Addr().String()
	e.telemetry.Logger.Info("Remote sampling strategies listening",
		zap.String("endpoint", ln.Addr().String()), zap.String("grpc_endpoint", e.grpcAddr),
		zap.String("strategies_file", e.cfg.StrategiesFile))

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(fmt.Errorf("sampling strategies server: %w", err)))
		}
	}()
	if gs := e.grpc; gs != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gs.Serve(gln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(fmt.Errorf("gRPC sampling strategies server: %w", err)))
			}
		}()
	}
	if e.cfg.StrategiesFile != "" && e.cfg.ReloadInterval > 0 {
		wg.Add(1)
		stop := e.stop
		go func() {
			defer wg.Done()
			e.reloadLoop(h, version, stop)
		}()
	}
	done := e.done
	go func() {
		wg.Wait()
		close(done)
	}()
	return nil
}

// reloadLoop polls the file's modification time and size; a change re-reads it. A file
// that fails to read or check is logged and counted once per version, and the last good
// strategies keep being served.
func (e *Extension) reloadLoop(h *handler, seen fileVersion, stop <-chan struct{}) {
	t := time.NewTicker(e.cfg.ReloadInterval)
	defer t.Stop()
	path := e.cfg.StrategiesFile
	statFailed := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		fi, err := os.Stat(path)
		if err != nil {
			if !statFailed {
				e.telemetry.Logger.Warn("Sampling strategies file unreadable; serving the last good version",
					zap.String("strategies_file", path), zap.Error(err))
				e.reloads.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", "error")))
			}
			statFailed = true
			continue
		}
		statFailed = false
		v := fileVersion{modTime: fi.ModTime(), size: fi.Size()}
		if v == seen {
			continue
		}
		strats, loaded, err := loadFile(path, e.cfg.DefaultSamplingPercentage)
		if err != nil {
			seen = v
			e.telemetry.Logger.Warn("Sampling strategies file changed but is invalid; serving the last good version",
				zap.String("strategies_file", path), zap.Error(err))
			e.reloads.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", "error")))
			continue
		}
		seen = loaded
		h.current.Store(newServed(strats, e.cfg.NumericStrategyType))
		e.telemetry.Logger.Info("Sampling strategies file reloaded", zap.String("strategies_file", path))
		e.reloads.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", "ok")))
	}
}

// loadFile reads and checks the strategies file, returning the version it read.
func loadFile(path string, defaultPercentage float64) (*strategies, fileVersion, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileVersion{}, fmt.Errorf("open sampling strategies file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileVersion{}, fmt.Errorf("stat sampling strategies file %q: %w", path, err)
	}
	s, err := parseStrategies(f, defaultPercentage)
	if err != nil {
		return nil, fileVersion{}, fmt.Errorf("sampling strategies file %q: %w", path, err)
	}
	return s, fileVersion{modTime: fi.ModTime(), size: fi.Size()}, nil
}

// Shutdown stops serving and reloading. It is safe without Start and safe twice.
func (e *Extension) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	srv, gs, stop, done := e.server, e.grpc, e.stop, e.done
	e.server, e.grpc, e.handler, e.stop, e.done = nil, nil, nil, nil, nil
	e.mu.Unlock()
	if srv == nil {
		return nil
	}
	close(stop)
	err := srv.Shutdown(ctx)
	if gs != nil {
		// GracefulStop waits for calls in flight, which answer at once; Stop when ctx
		// ends first.
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			gs.Stop()
			<-stopped
		}
	}
	<-done
	if err != nil {
		return fmt.Errorf("stop sampling strategies server: %w", err)
	}
	return nil
}
