package queryext

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.uber.org/zap"

	"github.com/spoortrace/spoor/query"
	"github.com/spoortrace/spoor/storage/storageext"
	"github.com/spoortrace/spoor/web"
)

// Extension serves the query API and the UI.
type Extension struct {
	cfg       *Config
	telemetry component.TelemetrySettings

	mu     sync.Mutex
	api    *query.API
	server *http.Server
	done   chan struct{}
}

var (
	_ extensioncapabilities.PipelineWatcher = (*Extension)(nil)
	_ extensioncapabilities.Dependent       = (*Extension)(nil)
)

func newExtension(cfg *Config, ts component.TelemetrySettings) *Extension {
	return &Extension{cfg: cfg, telemetry: ts}
}

// Dependencies makes the collector start the storage extension first.
func (e *Extension) Dependencies() []component.ID { return []component.ID{e.cfg.Storage} }

// Start finds the store and starts serving.
func (e *Extension) Start(ctx context.Context, host component.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.server != nil {
		return errors.New("query server already started")
	}
	st, err := storageext.GetStore(host, e.cfg.Storage)
	if err != nil {
		return err
	}
	api := query.New(st, query.Options{
		Logger:             e.telemetry.Logger,
		AutocompleteKeys:   e.cfg.ZipkinAutocompleteKeys,
		MaxClockSkewAdjust: e.cfg.MaxClockSkewAdjust,
	})
	mux := http.NewServeMux()
	mux.Handle("/api/", api.Handler())
	mux.Handle("/spoor/", api.Handler())
	mux.Handle("/spoor/api/", api.Handler())
	se, err := storageext.GetExtension(host, e.cfg.Storage)
	if err != nil {
		return err
	}
	mux.Handle("/healthz", storageHealth(se.Guard(), api.Handler()))
	mux.Handle("/", web.Handler())

	var handler http.Handler = mux
	if e.cfg.AuthToken != "" {
		handler = withAuth(string(e.cfg.AuthToken), e.cfg.ServerConfig.TLS.HasValue(), mux)
	}
	ln, err := e.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listen for queries on %s: %w", e.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	srv, err := e.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), e.telemetry, handler)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("create query server: %w", err)
	}
	e.api, e.server, e.done = api, srv, make(chan struct{})
	e.telemetry.Logger.Info("Query API and UI listening", zap.String("endpoint", ln.Addr().String()))
	go func() {
		defer close(e.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(fmt.Errorf("query server: %w", err)))
		}
	}()
	return nil
}

// Ready is called once every pipeline has started: from now on /healthz answers 200.
func (e *Extension) Ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.api != nil {
		e.api.SetReady(true)
	}
	return nil
}

// NotReady is called before the receivers stop.
func (e *Extension) NotReady() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.api != nil {
		e.api.SetReady(false)
	}
	return nil
}

// Shutdown stops serving. It is safe without Start and safe twice.
func (e *Extension) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	srv, done := e.server, e.done
	e.server, e.api = nil, nil
	e.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	<-done
	if err != nil {
		return fmt.Errorf("stop query server: %w", err)
	}
	return nil
}
