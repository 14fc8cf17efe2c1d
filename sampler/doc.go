// Package sampler will hold Spoor's sampling processor: consistent probability head
// sampling by trace ID (the same decision for a trace on every node, with th written to
// tracestate) and tail policies that keep whole error and slow traces. Until it lands
// (issue 4), the default pipeline has no sampling stage: every span received is stored.
package sampler
