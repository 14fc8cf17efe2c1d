// Package spanmatch matches spans to their parent span across the batches they
// arrive in, whichever comes first, in bounded memory. Both service-dependency
// counters use it: the trace store's (storage/badgerstore) and the analytics stage's
// service graph (analytics); they differ only in what a match counts.
//
// A Matcher remembers every recent span in a two-generation table, and every child
// whose parent has not come in a second one. A generation turns over when the wait
// has passed (Tick) or when it is full: the previous one is dropped, its spans that
// named an uninstrumented peer and that no span of another service answered become
// calls to that peer (Hooks.Unanswered), its waiting children are counted as
// orphans (Hooks.Orphans). So a span waits between one and two waits, and memory is
// bounded by the capacities. Drain decides everything at shutdown.
//
// A batch is observed in two passes, so that a parent is found whatever the order of
// the batch: Put every span, then for every span Claim the children waiting for it
// and Match it to its parent. The caller holds its own lock around a Matcher; hooks
// are called with it held. The package depends on nothing of Spoor's.
package spanmatch
