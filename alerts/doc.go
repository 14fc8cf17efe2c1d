// Package alerts evaluates alert rules on the live span stream and notifies an
// Alertmanager-compatible webhook.
//
// What it promises:
//   - Rules are read from a YAML file (the form of issue 5, Prometheus-like groups) or
//     from the collector config; an invalid file is refused with its name, the line and
//     the reason, at start and by `spoor validate`.
//   - A rule selects spans by service, operation and attributes (equality, "=~regex",
//     "!=value"), counts them and their errors weighted by adjusted count over a
//     sliding window, and fires on error_rate or error_count above a threshold, after
//     the condition has held `for` a duration. States go inactive → pending → firing →
//     resolved, as Prometheus rules do. Rules are evaluated when spans arrive and at
//     least every evaluation interval (1 s).
//   - Notifications are POSTed in the Alertmanager v2 API format (a JSON array of
//     {labels, annotations, startsAt, endsAt, generatorURL}) with example trace IDs,
//     re-sent while firing, and a resolved notice ends them. Delivery runs in its own
//     goroutine with retries, exponential backoff and a circuit breaker: the ingest path
//     only updates in-memory state under a short lock and never waits for the webhook,
//     and no state is lost while the webhook is down (the latest state of every alert is
//     delivered when it comes back).
package alerts
