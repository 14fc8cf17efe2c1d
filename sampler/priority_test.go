package sampler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/probabilisticsamplerprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/collector/processor/processortest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/spoortrace/spoor/internal/otlpbody"
)

// priorities are the sampling.priority values of the tests, in every type contrib reads;
// nil is "no attribute".
var priorities = []any{nil, nil, nil, int64(0), int64(1), int64(-1), int64(7), 0.0, 2.5, -0.5, "0", "1", "0.0", "3.5", "abc", "-3", true}

func setPriority(sp ptrace.Span, v any) {
	switch v := v.(type) {
	case nil:
	case int64:
		sp.Attributes().PutInt(samplingPriorityKey, v)
	case float64:
		sp.Attributes().PutDouble(samplingPriorityKey, v)
	case string:
		sp.Attributes().PutStr(samplingPriorityKey, v)
	case bool:
		sp.Attributes().PutBool(samplingPriorityKey, v)
	}
}

// priorityBatch is n random spans with random sampling.priority values and tracestates
// that both samplers read the same way: empty, another vendor's, an rv, a th that the
// span's randomness reaches (an inconsistent th is a documented difference: contrib
// drops the span when fail_closed, Spoor erases the th and decides).
func priorityBatch(rng *rand.Rand, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < n; i++ {
		sp := spans.AppendEmpty()
		tid := randTID(rng)
		sp.SetTraceID(tid)
		sp.SetSpanID(randSID(rng))
		sp.SetName("op")
		sp.Attributes().PutStr("http.route", "/x")
		setPriority(sp, priorities[rng.IntN(len(priorities))])
		R := TraceIDRandomness(tid)
		var ts string
		switch rng.IntN(8) {
		case 0:
			ts = "vendor=x"
		case 1:
			ts = fmt.Sprintf("ot=rv:%014x", rng.Uint64()&randomnessMask)
		case 2, 3:
			for _, th := range []string{"e666", "c", "8", "0"} {
				if t, _ := ParseTValue(th); R >= t {
					ts = "ot=th:" + th
					break
				}
			}
		}
		sp.TraceState().FromRaw(ts)
	}
	return td
}

// sampling.priority equals contrib's probabilisticsamplerprocessor v0.162.0 run through
// its own factory, in every mode and at rates from 0% to 100%: the same spans kept
// (priority 0 drops, above 0 keeps, whatever the probability says) with the same
// tracestate (th:0 on a span priority keeps, an incoming th left as it is, hash_seed's
// rv). At 100% in equalizing and proportional only the kept spans are compared: contrib
// writes th:0 into every span there, Spoor passes spans through untouched (doc.go).
func TestSamplingPriorityEqualsContrib(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []Mode{HashSeed, Equalizing, Proportional} {
		for _, pct := range []float32{0, 0.001, 10, 37.5, 100} {
			t.Run(fmt.Sprintf("%s_%v%%", mode, pct), func(t *testing.T) {
				cf := probabilisticsamplerprocessor.NewFactory()
				ccfg := cf.CreateDefaultConfig().(*probabilisticsamplerprocessor.Config)
				ccfg.Mode, ccfg.HashSeed, ccfg.SamplingPercentage = probabilisticsamplerprocessor.SamplerMode(mode), 17, pct
				sink := new(consumertest.TracesSink)
				contrib, err := cf.CreateTraces(ctx, processortest.NewNopSettings(cf.Type()), ccfg, sink)
				if err != nil {
					t.Fatalf("contrib processor: %v", err)
				}
				ours := newFactoryProc(t, mode, float64(pct), 17)
				oursSink := new(consumertest.TracesSink)
				oursProc, err := NewFactory().CreateTraces(ctx, processortest.NewNopSettings(Type), ours, oursSink)
				if err != nil {
					t.Fatalf("spoor processor: %v", err)
				}
				if err := contrib.Start(ctx, componenttest.NewNopHost()); err != nil {
					t.Fatal(err)
				}
				if err := oursProc.Start(ctx, componenttest.NewNopHost()); err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(uint64(pct*1000), uint64(len(mode))))
				for range 20 {
					td := priorityBatch(rng, 1000)
					td2 := ptrace.NewTraces()
					td.CopyTo(td2)
					if err := contrib.ConsumeTraces(ctx, td); err != nil {
						t.Fatal(err)
					}
					if err := oursProc.ConsumeTraces(ctx, td2); err != nil {
						t.Fatal(err)
					}
				}
				var want, got []string
				for _, td := range sink.AllTraces() {
					want = append(want, kept(td)...)
				}
				for _, td := range oursSink.AllTraces() {
					got = append(got, kept(td)...)
				}
				if len(want) != len(got) {
					t.Fatalf("kept %d spans, contrib %d", len(got), len(want))
				}
				exact := mode == HashSeed || pct < 100
				for i := range want {
					w, g := want[i], got[i]
					if !exact {
						w, g = w[:16], g[:16]
					}
					if w != g {
						t.Fatalf("span %d: %q, contrib %q", i, got[i], want[i])
					}
				}
				// Priority must have decided against the probability somewhere, both ways.
				forcedKeeps := 0
				for _, s := range got {
					if strings.Contains(s, "th:0") {
						forcedKeeps++
					}
				}
				if len(want) == 0 || (pct < 100 && forcedKeeps == 0) {
					t.Fatalf("kept %d spans, %d with th:0: the comparison proves nothing", len(want), forcedKeeps)
				}
			})
		}
	}
}

// With tail policies on, a span with sampling.priority above 0 keeps its whole trace (its
// spans held before it are released, later ones follow), itself with th:0 as head
// sampling writes it, the others without th; a span with priority 0 is dropped even from
// a trace a policy keeps. Both count under policy sampling_priority.
func TestSamplingPriorityWithTail(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	p, clk := newTail(t, tailCfg(1), sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	rng := rand.New(rand.NewPCG(12, 12))
	forced, errTrace, quiet := dropTID(t, p, rng), dropTID(t, p, rng), dropTID(t, p, rng)
	withPrio := func(td ptrace.Traces, id pcommon.SpanID, v any) ptrace.Traces {
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := 0; i < spans.Len(); i++ {
			if spans.At(i).SpanID() == id {
				setPriority(spans.At(i), v)
			}
		}
		return td
	}
	got := out{}
	got.add(run(t, p, tbatch(tspan{tid: forced, sid: sid(1)}, tspan{tid: errTrace, sid: sid(2)}, tspan{tid: quiet, sid: sid(3)})))
	clk.advance(time.Second)
	got.add(run(t, p, withPrio(withPrio(tbatch(
		tspan{tid: forced, sid: sid(4)},
		tspan{tid: errTrace, sid: sid(5), err: true},
		tspan{tid: errTrace, sid: sid(6)},
		tspan{tid: quiet, sid: sid(7)},
	), sid(4), int64(1)), sid(6), "0")))
	clk.advance(time.Second)
	got.add(run(t, p, tbatch(tspan{tid: forced, sid: sid(8)})))
	clk.advance(10 * time.Second)
	p.tail.sweep(context.Background())

	for _, spans := range got {
		slices.Sort(spans) // held spans are released after the batch's own
	}
	if want := fmt.Sprint([]string{sid(1).String() + " ", sid(4).String() + " ot=th:0", sid(8).String() + " "}); fmt.Sprint(got[forced]) != want {
		t.Errorf("priority 1 trace: %v, want %v", got[forced], want)
	}
	if want := fmt.Sprint([]string{sid(2).String() + " ", sid(5).String() + " "}); fmt.Sprint(got[errTrace]) != want {
		t.Errorf("error trace with a priority 0 span: %v, want %v", got[errTrace], want)
	}
	if len(got[quiet]) != 0 {
		t.Errorf("quiet trace: %v, want dropped", got[quiet])
	}
	m := collect(t, reader)
	for k, v := range map[string]int64{
		"spoor_sampler_spans mode=equalizing policy=sampling_priority sampled=true":  1,
		"spoor_sampler_spans mode=equalizing policy=sampling_priority sampled=false": 1,
		"spoor_sampler_tail_traces policy=sampling_priority":                         1,
		"spoor_sampler_tail_traces policy=error":                                     1,
		"spoor_sampler_tail_buffered_spans":                                          0,
	} {
		if m[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, m[k], v, m)
		}
	}
}

// spanPriority reads the attribute as contrib does.
func TestSpanPriority(t *testing.T) {
	for _, c := range []struct {
		v    any
		want priority
	}{
		{nil, priorityDefer}, {int64(0), priorityDrop}, {int64(1), priorityKeep}, {int64(-1), priorityDefer},
		{0.0, priorityDrop}, {0.25, priorityKeep}, {-2.0, priorityDefer},
		{"0", priorityDrop}, {"1e3", priorityKeep}, {" 1", priorityDefer}, {"x", priorityDefer}, {"-1", priorityDefer},
		{true, priorityDefer},
	} {
		sp := ptrace.NewSpan()
		setPriority(sp, c.v)
		if got := spanPriority(sp); got != c.want {
			t.Errorf("sampling.priority %#v: %d, want %d", c.v, got, c.want)
		}
	}
}

// The sampler skips reading sampling.priority when ingest noted that no span of the
// request has it (internal/otlpbody), and only where it trusts what the door decoded
// (tail.hold_request_bytes, which spoor sets from its pipelines). A context that says so
// falsely shows which it did: a priority 0 span at 100% is dropped if the sampler read
// the attribute, kept if it did not.
func TestNoSamplingPriorityFact(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		tail, trusted, noted bool
		wantKept             bool
	}{
		{"head, trusted, noted", false, true, true, true},
		{"head, trusted, not noted", false, true, false, false},
		{"head, not trusted, noted", false, false, true, false},
		{"tail, trusted, noted", true, true, true, true},
		{"tail, trusted, not noted", true, true, false, false},
		{"tail, not trusted, noted", true, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfgWith(Equalizing, 100)
			cfg.Tail.Enabled = tc.tail
			cfg.Tail.HoldRequestBytes = tc.trusted
			p := newProc(t, cfg)
			td := ptrace.NewTraces()
			sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
			setPriority(sp, int64(0))
			ctx := otlpbody.NewContext(context.Background(), nil, nil)
			if tc.noted {
				otlpbody.Note(ctx, otlpbody.NoSamplingPriority)
			}
			out, err := p.processTraces(ctx, td)
			if err != nil && err != processorhelper.ErrSkipProcessingData {
				t.Fatal(err)
			}
			if kept := err == nil && out.SpanCount() == 1; kept != tc.wantKept {
				t.Errorf("span kept: %v, want %v", kept, tc.wantKept)
			}
		})
	}
}
