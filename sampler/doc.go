// Package sampler is Spoor's sampler, the spoor_sampler collector processor: it keeps or
// drops each span by OpenTelemetry consistent probability sampling (REFERENCE.md §2), so
// that a trace gets the same decision on every node with no coordination, and, with tail
// policies on, also keeps whole traces that head sampling would drop when one of their
// spans errs, is slow or matches an attribute rule.
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
//   - sampling.priority (OpenTracing's span tag, an int, a double or a numeric string)
//     overrides the probability per span, as contrib's probabilistic_sampler does after
//     fail_closed, in every mode and at every rate: 0 drops the span, above 0 keeps it
//     (negative or unreadable: the probability decides). A span it keeps is kept with
//     probability 1, so below 100% it gets th:0, or keeps the th it came with (a stage
//     only raises T); hash_seed also writes its rv, and leaves a span it refuses as it
//     came. Both are counted under policy sampling_priority. Tested span for span
//     against the contrib processor; the differences are the documented ones (an
//     inconsistent th, and 100%, where contrib writes th:0 into every span). With tail
//     policies on, priority above 0 also keeps the span's whole trace (tail policy
//     sampling_priority), and priority 0 drops the span even from a trace a policy keeps.
//     Looking the attribute up cost as much as the rest of the head decision (the
//     span's attributes have left the cache by then), so where the sampler trusts what
//     the door decoded (as for tail.hold_request_bytes) it skips it for a request in
//     which ingest, reading every attribute key as it checked the limits, found none
//     (internal/otlpbody's facts): at 10% sampling, head sampling's own functions went
//     from 2.3-2.6% of spoor's CPU to 1.6-1.9%.
//
// Which rate decides, with per-service and per-operation overrides. Under the
// specification a span's th is the threshold that decided it, and since every span of a
// trace shares R, a trace stays whole exactly when all its spans are decided at one T.
// So a trace gets one rate on a node: the rate remembered for it from an earlier batch
// (the last trace_rate_cache traces decided are remembered, 100,000 by default), else
// its root span's (service.name and span name) when the root is in this batch, else the
// rate of its first span in this batch; the trace ID is then remembered with that rate.
// Every span of the trace, in this batch and later ones, is decided at it and carries its
// th, so the trace is kept or dropped whole however its spans are batched, and the root,
// arriving after its children (SDKs export children first), follows them. Which rate
// that is depends on arrival order, not on R, so P(kept | rate) is still the rate's
// probability and th gives exact adjusted counts. Spans are never held for this: nothing
// acknowledged waits in memory. The root's rate decides whenever the root comes with the
// trace's first batch (an entry operation such as a health check, batched with its local
// children, always does); otherwise the first span's service or operation rate decides
// the whole trace. Limits: a trace whose spans keep arriving after its ID has left the
// memory is decided afresh (at its then first span's rate: kept spans stay nested by
// R >= T, but the trace can be stored partly); and nodes do not share the memory, so
// when a trace's spans are spread over nodes, each node decides at the rate of what it
// saw first. For per-operation rates exact across nodes, serve them to SDKs
// (sampler/remote): their th travels with the trace and this stage respects it.
//
// Tail policies (tail: enabled) live in this processor, not in a second one after it: a
// later stage would never see the spans head sampling dropped, and an error trace
// must be kept with the spans that came before its error. So the head decision is made
// first and, for a span it drops, deferred:
//   - A span head sampling keeps goes on synchronously, th written, exactly as without
//     tail policies; the tail stage only reads it (a matching span marks its trace kept).
//   - A span head sampling drops is held, in its batch's held batch, for decision_wait
//     from the batch's arrival. When any span of the trace matches a policy (status
//     Error; a span lasting latency_threshold; an attribute rule, key = value or regex,
//     on the span or its resource), the trace is kept: its spans still held, in every
//     held batch, join the batch that carried the match, and the spans of the trace in
//     that batch stay in it. When a held batch's wait ends, the spans in it of traces no
//     policy matched are dropped, which is their head decision. A trace is decided by
//     its first match: it does not wait for later spans. Latency is each span's own
//     duration: a trace's root, which covers it, decides when it comes (before
//     per-batch holding, the held spans of a trace together covering the threshold
//     also kept it, which needed an entry per held trace).
//   - Acknowledgement: a held span is acknowledged on arrival, before it is stored (its
//     caller cannot wait seconds). Only spans head sampling dropped are held, so what a
//     crash, a shutdown or a failed write of the batch that releases them can lose is
//     undecided spans that Spoor without tail policies would have dropped anyway; every
//     span head sampling keeps is stored before it is acknowledged, as before. Released
//     spans are stored and acknowledged with the batch that decided their trace.
//   - th: a kept span that head sampling would have dropped has its th erased (rv and
//     the rest stay): a policy is not a probability, and the specification says a stage
//     whose probability is unknown erases th. Head-kept spans keep their th, so adjusted
//     counts from th-bearing spans still estimate the whole; spans without th are extra.
//   - How spans are held: the head-dropped spans of one incoming batch go into one held
//     batch, with one resource and scope copy per scope of the batch, not per trace, and
//     nothing is kept per held trace but its ID in the held batch's list, with a Bloom
//     filter of them (16-32 bits per trace; none for a batch of few traces). When most
//     of a scope's spans are held (low head rates), its whole span list moves to the
//     held batch at once and the few kept spans move back. When the batch ends, its
//     held batch is sealed: replaced by its protobuf encoding (wire.go), one marshal,
//     because a held span as pdata is some forty small objects that every garbage
//     collection marks again while it waits (at 10% with 100,000 held spans that
//     marking cost more CPU than the rest of the sampler together), and encoded it is
//     ~300 pointer-free bytes. A keep looks for its trace in every held batch (a
//     filter read for most) and walks the encodings of those that have it, once for
//     all the traces a batch kept, decoding only their spans; a trace whose wait ends
//     costs nothing: its batch is freed, whole. Before, each held trace had an entry in a table of pending traces
//     and remembered decisions (6 MiB at the default config, a cache miss or two per
//     trace to insert, decide and forget it, and its misses evicted the rest of
//     spoor's data from the cache): at 10% sampling the tail stage added 6.2% to
//     spoor's CPU per span in BenchmarkSamplerShareOfCPU, and the whole sampler 7.9%
//     (median of rounds 8.6%); held per batch, 0.7% and 2.7% (2.1%).
//   - With tail.hold_request_bytes (spoor sets it from its pipelines: on when only
//     spoor_ingest and spoor_analytics precede the sampler, so the spans it sees are
//     the ones the receiver decoded), a batch's held spans are not encoded at all:
//     the door (ingest) passes each OTLP request's protobuf bytes, HTTP body or gRPC
//     message, in the context (internal/otlpbody), and the batch is checked against
//     them (the same resources, scopes and spans in the same order; a sample of the
//     spans, each scope's first and last included, with the same IDs). When the held
//     spans make most of the request's buffer, the stage keeps the buffer whole
//     (otlpbody.Retain; the door reuses it once the held batch is freed) with a bitmap
//     of the held spans; otherwise the held spans' fields are copied out, with their
//     resource's and scope's, into a buffer recycled from freed batches. Such spans keep
//     the th they came with until a policy keeps their trace and they are decoded, when
//     it is erased, so they come out exactly as held pdata spans do (wire_test.go
//     compares the two, batch for batch). A batch without bytes, or that does not match
//     them, is held as pdata and sealed; spoor_sampler_tail_held_batches counts both, by
//     held_as. At 10% head sampling this took the sampler's own functions from 15-18% of
//     spoor's CPU to 6-8% (head sampling alone: 1-3%; since, 5.8-7% and 1.6-1.9%; held
//     per batch, about 4%).
//     Copying the held spans out in every case, so that the door reuses each buffer at
//     once, measured no cheaper (tail stage: 6.8% added to spoor's CPU, against 6.5%
//     keeping buffers whole).
//   - What the stage reads that has left the cache is read ahead, in a loop of reads
//     that do not wait for one another: the request's bytes (one byte per 64) before
//     they are indexed, which otherwise waited for a cache miss at each span.
//   - Memory is bounded: the held batches not yet freed hold at most max_spans spans
//     and max_traces traces (a trace counted once per held batch it has spans in;
//     spans of traces already kept count until their batch goes, so memory, not only
//     undecided spans, is bounded); a span beyond either frees the oldest held batch
//     early, its undecided traces taking their head decision (dropped, counted in
//     spoor_sampler_tail_degraded_*, reason max_traces or max_spans), so the buffer is
//     a window of the newest batches. The last decision_cache keeps are remembered (a
//     ring of trace IDs), so that a span arriving after its trace was kept is kept too.
//     A trace whose wait ended is not remembered: a later span of it is held afresh,
//     and when that span errs, what is left of the trace is kept rather than lost.
//   - A timer ends waits every tenth of decision_wait (10 ms to 1 s); Shutdown stops it
//     and drops the held spans, counted with reason shutdown.
//   - Concurrent batches share one lock for their head-dropped spans; a batch whose
//     spans head sampling all keeps and that matches no policy never takes it.
//
// Metrics: spoor_sampler_spans and spoor_sampler_traces (traces counted on their root
// span), by mode, policy (where R came from, or why a span was refused) and sampled;
// spoor_sampler_erased_thresholds; these count head decisions, before the tail stage.
// With tail policies: spoor_sampler_tail_traces (by the policy that kept them, or none
// when a held batch's wait ended: a trace once per held batch it had spans in),
// spoor_sampler_tail_spans (head-dropped spans kept or dropped, by policy),
// spoor_sampler_tail_degraded_traces and _spans (by reason),
// spoor_sampler_tail_late_spans (spans of a kept trace that came after the keep, with
// sampled=true; sampled=false, late spans of dropped traces, is no longer counted since
// those are held afresh), spoor_sampler_tail_held_batches (by held_as: request_bytes or
// encoded), and the gauges spoor_sampler_tail_buffered_spans and _traces.
package sampler
