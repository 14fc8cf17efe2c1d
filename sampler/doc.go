// Package sampler is Spoor's head sampler, the spoor_sampler collector processor: it
// keeps or drops each span by OpenTelemetry consistent probability sampling
// (REFERENCE.md §2), so that a trace gets the same decision on every node with no
// coordination.
//
// What it promises:
//   - R is the tracestate's ot rv (14 hex digits) or else the trace ID's low 56 bits; T
//     comes from the percentage at sampling_precision hex digits (default 4: 10% is
//     th:e666); a span is kept iff R >= T, and a kept span's tracestate carries th:T.
//     The math is Spoor's own and is tested digit for digit against contrib pkg/sampling.
//   - equalizing (default): T = max(T_in, T_cfg), a stage only raises T. proportional:
//     T from p_in·p_cfg, never below T_in; under 2^-56 the span is dropped. hash_seed:
//     contrib probabilistic_sampler's FNV-1a-32 14-bit decision and its ot=rv:…;th:…
//     output, bit for bit; a span that already has rv or th, or an unreadable
//     tracestate, is dropped (fail_closed, the default) or passed untouched.
//   - rv and the other ot sub-keys and other vendors' entries are kept; a rewritten ot
//     entry moves to the front as W3C asks. A th that R does not reach (inconsistent) or
//     that cannot be read is erased, as the specification says, and the stage decides
//     as if none had arrived (contrib instead drops such spans when fail_closed).
//   - A stage whose probability does not change the incoming one writes nothing: at
//     100% (the default config) spans pass through byte for byte, th:0 is not added,
//     since an absent th means "probability unknown", which 100% here does not change.
//   - The decision for a span with an empty tracestate allocates nothing (see
//     sampler_bench_test.go); a rewritten non-empty tracestate costs one string.
//
// Which rate decides, with per-service and per-operation overrides: the rate of the
// trace's root span (its service.name and span name) when the root is in the same batch,
// else the span's own service and operation. Without overrides every span of a trace
// sees the same T, so a trace is never broken, however its spans are batched. With
// overrides, a trace whose root arrives in another batch than some of its spans is
// decided per span for those: because R is shared and R >= T is monotonic, the kept
// spans are nested (kept at a lower rate implies kept at every higher one), and every
// span's th states its own probability, so adjusted counts stay exact per span, but such
// a trace can be stored partly (spans of higher-rate services without those of
// lower-rate ones). Per-operation rates are meant for entry operations (for example a
// health check at 1%), where the root is usually batched with its local children.
// Making them exact across batches needs the decision to travel with the trace — an SDK
// sampler writing th, which this stage then respects — or tail sampling's buffering.
//
// Metrics: spoor_sampler_spans and spoor_sampler_traces (traces counted on their root
// span), by mode, policy (where R came from, or why a span was refused) and sampled;
// spoor_sampler_erased_thresholds.
package sampler
