// Live functions, and one function's charts over the last hour.
import { get, localApp, v1 } from '../api.js';
import { Empty, Messages, PageTitle, TableWrap, TimeChart, useApi } from '../components.jsx';
import { fmtAgo, fmtBytes, fmtNum, href, plural } from '../util.js';

function stateLabel(state) {
  return state === 'resident' ? 'resident' : state === 'scaled_to_zero' ? 'scaled to zero' : state;
}

export function FunctionsPage() {
  const fns = useApi((signal) => get(v1('/functions'), { signal }), [], 5000);
  const list = fns.data || [];
  return (
    <section>
      <PageTitle>Functions</PageTitle>
      <Messages error={fns.error} />
      {fns.loading && !fns.data ? <p>Loading functions…</p> : null}
      {fns.data && !list.length ? <Empty>No function is live.</Empty> : null}
      {list.length ? (
        <TableWrap label="Live functions">
          <table id="functions-table">
            <thead>
              <tr>
                <th scope="col">Function</th>
                <th scope="col">Version</th>
                <th scope="col">State</th>
                <th scope="col">In flight / capacity</th>
                <th scope="col">Memory</th>
                <th scope="col">Timeout</th>
                <th scope="col">Routes and triggers</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {list.map((f) => {
                const app = localApp(f.app);
                return (
                  <tr key={`${f.app}/${f.name}`} data-function={`${app}/${f.name}`}>
                    <th scope="row">
                      <a href={href(['functions', app, f.name])}>
                        {app}/{f.name}
                      </a>
                    </th>
                    <td>{f.version}</td>
                    <td>
                      <span class={`badge ${f.state === 'resident' ? 'badge-ok' : 'badge-idle'}`}>{stateLabel(f.state)}</span>
                      {f.min_warm ? <span class="muted"> (kept warm)</span> : null}
                    </td>
                    <td>
                      {f.in_flight} / {f.max_concurrency}
                    </td>
                    <td>{fmtBytes(f.memory_bytes)}</td>
                    <td>{fmtNum(f.timeout_ms)} ms</td>
                    <td>
                      {[...(f.routes || []), ...(f.triggers || []).map((t) => t.trigger + (t.state ? ` (${t.state})` : ''))].join(', ') || '—'}
                    </td>
                    <td>
                      {f.last_error ? (
                        <a href={href(['invocations', f.last_error.invocation_id])}>
                          {f.last_error.status} {f.last_error.code}, {fmtAgo(f.last_error.at)}
                        </a>
                      ) : (
                        <span class="muted">none</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
    </section>
  );
}

const latest = (values) => {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
};
const sum = (values) => values.reduce((a, v) => a + (v || 0), 0);
const max = (values) => values.reduce((a, v) => (v !== null && v > a ? v : a), 0);

export function FunctionPage({ app, name }) {
  const fnId = encodeURIComponent(`${app}/${name}`);
  const series = useApi((signal) => get(v1(`/functions/${fnId}/series`), { signal }), [app, name], 5000);
  const status = useApi(
    (signal) => get(v1(`/functions?app=${encodeURIComponent(app)}`), { signal }).then((l) => (l || []).find((f) => f.name === name) || null),
    [app, name],
    5000,
  );
  const s = series.data;
  const points = (s && s.points) || [];
  const step = (s && s.step_seconds) || 10;
  const x = points.map((p) => Math.floor(Date.parse(p.at) / 1000));
  const col = (k) => points.map((p) => (p[k] === undefined ? null : p[k]));
  const requests = col('requests');
  const rate = requests.map((r) => (r === null ? null : r / step));
  const errors = col('errors');
  const cold = col('cold_starts');
  const p50 = col('p50_ms');
  const p99 = col('p99_ms');
  const inFlight = col('in_flight');
  const capacity = col('capacity');
  const totalRequests = sum(requests);
  const f = status.data;
  const q = { fn: `${app}/${name}` };
  return (
    <section>
      <p class="crumbs">
        <a href="#/functions">Functions</a> / {app}/{name}
      </p>
      <PageTitle>
        Function {app}/{name}
      </PageTitle>
      <nav aria-label="About this function" class="subnav">
        <a href={href(['invocations'], q)}>Invocations</a>
        <a href={href(['logs'], q)}>Logs</a>
        <a href={href(['events'], q)}>Events</a>
        <a href={href(['apps', app])}>App {app}</a>
      </nav>
      <Messages error={series.error || status.error} />
      {f ? (
        <div class="card">
          <h2 class="h-small">Now</h2>
          <dl class="pairs summary" id="function-limits">
            <dt>State</dt>
            <dd>{stateLabel(f.state)}</dd>
            <dt>Version</dt>
            <dd>{f.version}</dd>
            <dt>In flight</dt>
            <dd>
              {f.in_flight} of {f.max_concurrency}
            </dd>
            <dt>Memory limit</dt>
            <dd>{fmtBytes(f.memory_bytes)}</dd>
            <dt>Timeout</dt>
            <dd>{fmtNum(f.timeout_ms)} ms</dd>
            <dt>Idle</dt>
            <dd>{f.idle_seconds} s</dd>
            <dt>Last error</dt>
            <dd>
              {f.last_error ? (
                <a href={href(['invocations', f.last_error.invocation_id])}>
                  {f.last_error.status} {f.last_error.code} at {f.last_error.at}
                </a>
              ) : (
                'none'
              )}
            </dd>
          </dl>
        </div>
      ) : status.data === null && !status.loading && !status.error ? (
        <p class="notice notice-info">This function is not live: only its history is shown.</p>
      ) : null}
      <h2>Last hour</h2>
      <p class="muted">In {step}-second buckets, updated every 5 seconds; the last bucket is still filling.</p>
      <div class="charts">
        <TimeChart
          step={step}
          id="chart-requests"
          title="Requests"
          unit="per second"
          x={x}
          series={[{ label: 'requests/s', values: rate }]}
          summary={`${plural(totalRequests, 'request')} in the last hour; ${fmtNum(latest(requests) ?? 0)} in the current ${step} s bucket; peak ${fmtNum(max(rate), 1)} requests/s.`}
          summaryData={{ 'data-total': String(totalRequests), 'data-latest': String(latest(requests) ?? 0) }}
        />
        <TimeChart
          step={step}
          id="chart-errors"
          title="Errors"
          unit={`per ${step} s`}
          x={x}
          series={[{ label: 'errors', values: errors }]}
          summary={`${plural(sum(errors), 'error')} in the last hour; ${fmtNum(latest(errors) ?? 0)} in the current bucket.`}
          summaryData={{ 'data-total': String(sum(errors)) }}
        />
        <TimeChart
          step={step}
          id="chart-duration"
          title="Duration"
          unit="ms"
          x={x}
          series={[
            { label: 'p50', values: p50 },
            { label: 'p99', values: p99 },
          ]}
          summary={
            latest(p50) === null
              ? 'No invocation finished in the last hour.'
              : `Latest p50 ${fmtNum(latest(p50), 1)} ms, p99 ${fmtNum(latest(p99), 1)} ms; highest p99 ${fmtNum(max(p99), 1)} ms.`
          }
        />
        <TimeChart
          step={step}
          id="chart-cold"
          title="Cold starts"
          unit={`per ${step} s`}
          x={x}
          series={[{ label: 'cold starts', values: cold }]}
          summary={`${plural(sum(cold), 'cold start')} in the last hour.`}
          summaryData={{ 'data-total': String(sum(cold)) }}
        />
        <TimeChart
          step={step}
          id="chart-concurrency"
          title="Concurrency"
          unit="invocations"
          x={x}
          series={[
            { label: 'in flight', values: inFlight },
            { label: 'capacity', values: capacity },
          ]}
          summary={`${fmtNum(latest(inFlight) ?? 0)} in flight of a capacity of ${fmtNum(latest(capacity) ?? 0)}; peak ${fmtNum(max(inFlight))} in the last hour.`}
        />
      </div>
    </section>
  );
}
