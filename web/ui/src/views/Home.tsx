import { getServices, serviceRED } from '../lib/api';
import { useAsync } from '../lib/useAsync';
import { fmtMs, fmtRate } from '../lib/format';
import { href } from '../lib/router';
import { Empty, ErrorBox, ErrorShare, Loading, Note, serviceColor } from '../components/common';

// The start page: every service with its request rate, error share and p99 over the last
// hour, worst first by error share, each a link into search.
export function Home() {
  const st = useAsync(async (signal) => {
    const services = await getServices(signal);
    if (!services.length) return { services, red: null };
    return { services, red: await serviceRED(services, signal) };
  }, []);
  return (
    <div class="page">
      <h1>Services</h1>
      <p class="sub">Request rate, error share and latency over the last hour. Pick a service to search its traces.</p>
      {st.loading && !st.data && <Loading what="services" />}
      {st.error && <ErrorBox error={st.error} what="services" retry={st.reload} />}
      {st.data && !st.data.services.length && (
        <Empty title="No service has sent spans yet">
          Point an OpenTelemetry SDK at OTLP (:4317 gRPC, :4318 HTTP) or a Zipkin client at :9411 — or run{' '}
          <code>spoor demo</code> to send a payment flow.
        </Empty>
      )}
      {st.data?.red && (
        <>
          <table class="grid" data-testid="services">
            <thead>
              <tr>
                <th>Service</th>
                <th class="num">Requests</th>
                <th class="num">Rate</th>
                <th>Error share</th>
                <th>Last hour</th>
                <th class="num">p50</th>
                <th class="num">p99</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {st.data.red.stats.map((s) => (
                <tr class={s.errorShare > 0.05 ? 'row-bad' : ''} data-service={s.service}>
                  <td>
                    <a href={href('/search', { service: s.service })} class="svc">
                      <i style={{ background: serviceColor(s.service) }} />
                      {s.service}
                    </a>
                  </td>
                  <td class="num">{Math.round(s.requests)}</td>
                  <td class="num">{s.requests ? fmtRate(s.ratePerSec) : 'idle'}</td>
                  <td>{s.requests ? <ErrorShare share={s.errorShare} /> : '–'}</td>
                  <td>{s.spark && <Spark calls={s.spark.calls} errors={s.spark.errors} />}</td>
                  <td class="num">{fmtMs(s.p50Ms)}</td>
                  <td class="num">{fmtMs(s.p99Ms)}</td>
                  <td class="links">
                    <a href={href('/search', { service: s.service, status: 'error' })}>errors</a>
                    <a href={href('/map', { focus: s.service })}>map</a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Note>{st.data.red.note}</Note>
        </>
      )}
    </div>
  );
}

// Spark draws requests per minute as bars, the failed part of each in red.
function Spark({ calls, errors }: { calls: number[]; errors: number[] }) {
  const W = 150;
  const H = 26;
  const max = Math.max(1, ...calls);
  const bw = W / calls.length;
  return (
    <svg class="spark" width={W} height={H} viewBox={`0 0 ${W} ${H}`} aria-label="requests per minute over the last hour">
      {calls.map((c, i) => {
        const h = (c / max) * (H - 2);
        const eh = (errors[i] / max) * (H - 2);
        return (
          <g>
            {c > 0 && <rect x={i * bw} y={H - h} width={Math.max(1, bw - 0.6)} height={h} class="spark-ok" />}
            {errors[i] > 0 && <rect x={i * bw} y={H - eh} width={Math.max(1, bw - 0.6)} height={Math.max(1.5, eh)} class="spark-err" />}
          </g>
        );
      })}
    </svg>
  );
}
