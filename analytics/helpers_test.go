package analytics

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/spoortrace/spoor/storage/storageext"
)

// host offers the storage extension to the processor, as the collector does.
type host struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

// rig is a spoor_analytics processor in front of a sink, with a real Badger store
// owned by a started spoor_storage extension, and a manual metrics reader.
type rig struct {
	proc   processor.Traces
	p0     *analyticsProcessor
	sink   *consumertest.TracesSink
	ext    component.Component
	store  *storageext.Store
	reader *sdkmetric.ManualReader
}

func newRig(t *testing.T, dir string, edit func(*Config)) *rig {
	t.Helper()
	return newRigExt(t, dir, edit, nil)
}

// newRigExt is newRig with more extensions offered to the processor.
func newRigExt(t *testing.T, dir string, edit func(*Config), extra map[component.ID]component.Component) *rig {
	t.Helper()
	ctx := context.Background()
	ef := storageext.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*storageext.Config)
	ecfg.Directory, ecfg.SyncWrites = dir, false
	ext, err := ef.Create(ctx, extensiontest.NewNopSettings(ef.Type()), ecfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	sid := component.NewID(storageext.Type)
	r := &rig{ext: ext, sink: &consumertest.TracesSink{}, reader: sdkmetric.NewManualReader()}
	cfg := createDefaultConfig()
	cfg.Storage = sid
	cfg.FlushInterval = time.Hour // tests flush by hand (shutdown) unless they say otherwise
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := processortest.NewNopSettings(Type)
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	r.proc, r.p0, err = newTraces(ctx, set, cfg, r.sink)
	if err != nil {
		t.Fatal(err)
	}
	exts := map[component.ID]component.Component{sid: ext}
	for id, e := range extra {
		exts[id] = e
	}
	if err := r.proc.Start(ctx, host{Host: componenttest.NewNopHost(), ext: exts}); err != nil {
		t.Fatal(err)
	}
	r.store, err = storageext.GetStore(host{ext: map[component.ID]component.Component{sid: ext}}, sid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.proc.Shutdown(ctx)
		_ = ext.Shutdown(ctx)
	})
	return r
}

// stop shuts the processor down (deciding every waiting edge and flushing).
func (r *rig) stop(t *testing.T) {
	t.Helper()
	if err := r.proc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type spanSpec struct {
	service, name string
	kind          ptrace.SpanKind
	err           bool
	start         time.Time
	dur           time.Duration
	traceID       pcommon.TraceID
	spanID        pcommon.SpanID
	parent        pcommon.SpanID
	tracestate    string
	attrs         map[string]string
}

// batch builds a ptrace.Traces with one resource per span (services repeat across
// resources, as they do when several SDK instances send).
func batch(specs []spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range specs {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.SetTraceID(s.traceID)
		sp.SetSpanID(s.spanID)
		sp.SetParentSpanID(s.parent)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.start.Add(s.dur)))
		sp.TraceState().FromRaw(s.tracestate)
		if s.err {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		for k, v := range s.attrs {
			sp.Attributes().PutStr(k, v)
		}
	}
	return td
}

func randTraceID(rng *rand.Rand) (id pcommon.TraceID) {
	for i := range id {
		id[i] = byte(rng.Uint32())
	}
	return id
}

func randSpanID(rng *rand.Rand) (id pcommon.SpanID) {
	for i := range id {
		id[i] = byte(rng.Uint32())
	}
	return id
}

type nopConsumer struct{}

func (nopConsumer) Capabilities() consumer.Capabilities                { return consumer.Capabilities{} }
func (nopConsumer) ConsumeTraces(context.Context, ptrace.Traces) error { return nil }
