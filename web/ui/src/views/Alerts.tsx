import { getAlerts } from '../lib/api';
import { useAsync } from '../lib/useAsync';
import { Empty, ErrorBox, Loading, Note } from '../components/common';
import { fmtAgo } from '../lib/format';

function ago(s?: string): string {
  if (!s) return '–';
  const t = Date.parse(s);
  return isNaN(t) || t <= 0 ? '–' : fmtAgo(t * 1000);
}

// Alert rules with their state and recent firings, linked to the traces that fired them.
export function Alerts() {
  const st = useAsync((s) => getAlerts(s), []);
  return (
    <div class="page">
      <h1>Alerts</h1>
      <p class="sub">Rules on error spans, their state, and the traces that fired them.</p>
      {st.loading && !st.data && <Loading what="alert rules" />}
      {st.error && <ErrorBox error={st.error} what="alert rules" retry={st.reload} />}
      {!st.loading && !st.error && st.data === null && (
        <Empty title="Alerting is not available in this Spoor">
          This build has no <code>/spoor/api/v1/alerts</code>. Alert rules on error spans arrive with the analytics stage; then set{' '}
          <code>SPOOR_ALERT_RULES</code> to a rules file and <code>SPOOR_ALERT_WEBHOOK</code> to an Alertmanager URL.
        </Empty>
      )}
      {st.data && !(st.data.rules ?? []).length && (
        <Empty title="No alert rules are loaded">
          Set <code>SPOOR_ALERT_RULES</code> to a rules file (groups → rules with match, condition, window) and restart Spoor.
        </Empty>
      )}
      {st.data && (st.data.rules ?? []).length > 0 && (
        <>
          <table class="grid" data-testid="alert-rules">
            <thead>
              <tr>
                <th>Rule</th>
                <th>State</th>
                <th>Condition</th>
                <th class="num">Value</th>
                <th>Since</th>
                <th>Example traces</th>
              </tr>
            </thead>
            <tbody>
              {st.data.rules!.map((r) => (
                <tr class={r.state === 'firing' ? 'row-bad' : ''}>
                  <td>
                    <b>{r.alert}</b> <span class="muted">{r.group}</span>
                    {r.annotations?.summary && <div class="small muted">{r.annotations.summary}</div>}
                  </td>
                  <td>
                    <span class={'state-badge state-' + r.state}>{r.state}</span>
                  </td>
                  <td class="mono small">
                    {r.condition} over {r.window}
                    {r.for && r.for !== '0s' ? ` for ${r.for}` : ''}
                  </td>
                  <td class="num">{Number.isFinite(r.value) ? +r.value.toFixed(4) : '–'}</td>
                  <td>{r.state === 'firing' ? ago(r.firedAt) : r.state === 'pending' ? ago(r.activeAt) : ago(r.resolvedAt)}</td>
                  <td class="examples">
                    {(r.traceIDs ?? []).slice(0, 4).map((id) => (
                      <a href={`/trace/${id}`} class="ex ex-err">
                        {id.slice(0, 8)}
                      </a>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Recent firings</h3>
          {(st.data.firings ?? []).length === 0 ? (
            <Empty title="No rule has fired yet" />
          ) : (
            <table class="grid">
              <thead>
                <tr>
                  <th>Rule</th>
                  <th>Started</th>
                  <th>Ended</th>
                  <th class="num">Value</th>
                  <th>Traces</th>
                </tr>
              </thead>
              <tbody>
                {st.data.firings!.map((f) => (
                  <tr>
                    <td>
                      <b>{f.alert}</b> <span class="muted">{f.group}</span>
                    </td>
                    <td>{ago(f.startsAt)}</td>
                    <td>{f.endsAt ? ago(f.endsAt) : <span class="state-badge state-firing">still firing</span>}</td>
                    <td class="num">{+f.value.toFixed(4)}</td>
                    <td class="examples">
                      {(f.traceIDs ?? []).slice(0, 4).map((id) => (
                        <a href={`/trace/${id}`} class="ex ex-err">
                          {id.slice(0, 8)}
                        </a>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {st.data.webhook && (
            <Note>
              Webhook {st.data.webhook.url}: {st.data.webhook.delivered} delivered, {st.data.webhook.failed} failed
              {st.data.webhook.lastError ? `, last error: ${st.data.webhook.lastError}` : ''}.
            </Note>
          )}
        </>
      )}
    </div>
  );
}
