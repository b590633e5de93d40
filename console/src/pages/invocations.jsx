// A function's invocations, filtered, and one invocation: summary, log, cost
// receipt, outbound calls and its caller.
import { useState } from 'preact/hooks';
import { get, localApp, v1 } from '../api.js';
import { Empty, FunctionSelect, Messages, PageTitle, TableWrap, useApi, useFunctions } from '../components.jsx';
import { fmtBytes, fmtMoney, fmtMs, fmtNum, fmtTime, href, navigate } from '../util.js';

const SINCE = [
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['6h', 'Last 6 hours'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
];

function statusClass(status) {
  return status >= 500 ? 'badge-error' : status >= 400 ? 'badge-warn' : 'badge-ok';
}

export function InvocationsPage({ query }) {
  const fn = query.get('fn') || '';
  const status = query.get('status') || '';
  const trigger = query.get('trigger') || '';
  const since = query.get('since') || '1h';
  const min = query.get('min') || '';
  const functions = useFunctions();
  const [code, setCode] = useState(/^\d+$/.test(status) ? status : '');
  const statusMode = status === 'ok' || status === 'error' || status === '' ? status : 'code';
  const update = (changes) => {
    const next = { fn, status, trigger, since, min, ...changes };
    navigate(href(['invocations'], next), true);
  };
  const list = useApi(
    (signal) => {
      if (!fn) return Promise.resolve(null);
      const p = new URLSearchParams({ since, limit: '200' });
      if (status) p.set('status', status);
      if (trigger) p.set('trigger', trigger);
      if (min) p.set('min_duration_ms', min);
      return get(v1(`/functions/${encodeURIComponent(fn)}/invocations?${p}`), { signal });
    },
    [fn, status, trigger, since, min],
    5000,
  );
  const items = (list.data && list.data.invocations) || [];
  return (
    <section>
      <PageTitle>Invocations</PageTitle>
      <form
        class="filters"
        aria-label="Filter invocations"
        onSubmit={(e) => {
          e.preventDefault();
          if (statusMode === 'code') update({ status: code });
          list.reload();
        }}
      >
        <FunctionSelect id="inv-function" value={fn} functions={functions.data} onChange={(v) => update({ fn: v })} />
        <div class="field">
          <label for="inv-status">Status</label>
          <select
            id="inv-status"
            value={statusMode}
            onChange={(e) => {
              const v = e.currentTarget.value;
              if (v === 'code') update({ status: code || '500' });
              else update({ status: v });
            }}
          >
            <option value="">Any</option>
            <option value="ok">OK (2xx, 3xx)</option>
            <option value="error">Error</option>
            <option value="code">A status code…</option>
          </select>
        </div>
        {statusMode === 'code' ? (
          <div class="field">
            <label for="inv-code">Status code</label>
            <input
              id="inv-code"
              type="number"
              min="100"
              max="599"
              inputMode="numeric"
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
              onChange={(e) => update({ status: e.currentTarget.value })}
            />
          </div>
        ) : null}
        <div class="field">
          <label for="inv-trigger">Trigger</label>
          <select id="inv-trigger" value={trigger} onChange={(e) => update({ trigger: e.currentTarget.value })}>
            <option value="">Any</option>
            <option value="http">HTTP (gateway)</option>
            <option value="api">API</option>
            <option value="event">Event</option>
            <option value="service">Service call</option>
          </select>
        </div>
        <div class="field">
          <label for="inv-since">Time range</label>
          <select id="inv-since" value={since} onChange={(e) => update({ since: e.currentTarget.value })}>
            {SINCE.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="inv-min">Minimum duration (ms)</label>
          <input
            id="inv-min"
            type="number"
            min="0"
            step="1"
            inputMode="numeric"
            value={min}
            onChange={(e) => update({ min: e.currentTarget.value })}
          />
        </div>
        <div class="field field-button">
          <button type="submit">Refresh</button>
        </div>
      </form>
      <Messages error={functions.error || list.error} />
      {!fn ? <Empty>Choose a function to see its invocations.</Empty> : null}
      {fn && list.data && !items.length ? <Empty>No invocation matches these filters.</Empty> : null}
      {items.length ? (
        <TableWrap label="Invocations, newest first">
          <table id="invocations-table">
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Trigger</th>
                <th scope="col">Started</th>
                <th scope="col">Duration</th>
                <th scope="col">Cold</th>
                <th scope="col">Version</th>
                <th scope="col">Invocation</th>
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr
                  key={i.id}
                  class="clickable"
                  data-invocation={i.id}
                  data-status={i.status}
                  onClick={(e) => {
                    if (e.target.closest('a')) return;
                    navigate(href(['invocations', i.id]));
                  }}
                >
                  <td>
                    <span class={`badge ${statusClass(i.status)}`}>{i.status}</span>
                    {i.error ? <span class="muted"> {i.error}</span> : null}
                  </td>
                  <td>{i.trigger}</td>
                  <td>{fmtTime(i.started_at)}</td>
                  <td class="num">{fmtMs(i.duration_ms)}</td>
                  <td>{i.cold ? 'cold' : 'warm'}</td>
                  <td>{i.version}</td>
                  <th scope="row">
                    <a href={href(['invocations', i.id])} class="mono">
                      {i.id}
                    </a>
                  </th>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
    </section>
  );
}

export function InvocationPage({ id }) {
  const inv = useApi((signal) => get(v1(`/invocations/${encodeURIComponent(id)}`), { signal }), [id]);
  const usage = useApi((signal) => get(v1('/usage?since=1h'), { signal }), []);
  const d = inv.data;
  const prices = usage.data && usage.data.prices;
  const gbs = d ? (d.billed_ms / 1000) * (d.billed_memory_mib / 1024) : 0;
  const computeCost = prices ? gbs * prices.per_gb_second : null;
  const requestCost = prices ? prices.per_million_requests / 1e6 : null;
  const app = d ? localApp(d.app) : '';
  return (
    <section>
      <p class="crumbs">
        <a href={d ? href(['invocations'], { fn: `${app}/${d.function}` }) : '#/invocations'}>Invocations</a> / {id}
      </p>
      <PageTitle>
        Invocation <span class="mono wrap">{id}</span>
      </PageTitle>
      <Messages error={inv.error} />
      {inv.loading && !d ? <p>Loading…</p> : null}
      {d ? (
        <>
          <div class="card">
            <h2 class="h-small">Summary</h2>
            <dl class="pairs summary" id="invocation-summary">
              <dt>Function</dt>
              <dd>
                <a href={href(['functions', app, d.function])}>
                  {app}/{d.function}
                </a>{' '}
                (version {d.version})
              </dd>
              <dt>Status</dt>
              <dd>
                <span id="invocation-status" class={`badge ${statusClass(d.status)}`} data-status={d.status}>
                  {d.status}
                </span>
                {d.error ? <span class="error-text"> {d.error}</span> : null}
              </dd>
              <dt>Trigger</dt>
              <dd>{d.trigger}</dd>
              <dt>Called by</dt>
              <dd id="invocation-caller">
                {d.caller ? (
                  <a href={href(['invocations', d.caller])} class="mono">
                    {d.caller}
                  </a>
                ) : (
                  'no other invocation (the start of its call chain)'
                )}
              </dd>
              <dt>Calls it made</dt>
              <dd id="invocation-calls">
                {d.calls && d.calls.length ? (
                  <ul class="calls">
                    {d.calls.map((c) => (
                      <li key={c.id}>
                        <a href={href(['invocations', c.id])}>
                          {localApp(c.app)}/{c.function}
                        </a>{' '}
                        <span class={`badge ${statusClass(c.status)}`}>{c.status}</span> {fmtMs(c.duration_ms)}
                      </li>
                    ))}
                  </ul>
                ) : (
                  'none'
                )}
              </dd>
              <dt>Started</dt>
              <dd>{fmtTime(d.started_at)}</dd>
              <dt>Duration</dt>
              <dd>
                {fmtMs(d.duration_ms)} (CPU {fmtMs(d.cpu_ms)}){d.cold ? ', cold start' : ', warm'}
              </dd>
              <dt>Peak memory</dt>
              <dd>
                {fmtBytes(d.peak_memory_bytes)}
                {d.peak_host_memory_bytes !== undefined ? ` (host ${fmtBytes(d.peak_host_memory_bytes)})` : ''}
              </dd>
              <dt>Bytes in / out</dt>
              <dd>
                {fmtBytes(d.bytes_in)} / {fmtBytes(d.bytes_out)}
              </dd>
            </dl>
          </div>
          <div class="two-col">
            <section class="card" aria-labelledby="receipt-title">
              <h2 id="receipt-title" class="h-small">
                Cost receipt
              </h2>
              <dl class="pairs receipt" id="cost-receipt">
                <dt>Billed duration</dt>
                <dd>{fmtNum(d.billed_ms)} ms</dd>
                <dt>Billed memory</dt>
                <dd>{fmtNum(d.billed_memory_mib)} MiB</dd>
                <dt>GB-seconds</dt>
                <dd>{gbs.toFixed(6)}</dd>
                <dt>Compute price</dt>
                <dd>
                  {prices
                    ? `${fmtMoney(computeCost, prices.currency)} (at ${prices.per_gb_second} ${prices.currency} per GB-s)`
                    : usage.error
                      ? 'prices unavailable'
                      : '…'}
                </dd>
                <dt>Request price</dt>
                <dd>{prices ? `${fmtMoney(requestCost, prices.currency)} (${prices.per_million_requests} per million)` : '…'}</dd>
                <dt>Total</dt>
                <dd>
                  <strong>{prices ? fmtMoney(computeCost + requestCost, prices.currency) : '…'}</strong>
                </dd>
              </dl>
            </section>
            <section class="card" aria-labelledby="outbound-title">
              <h2 id="outbound-title" class="h-small">
                Outbound calls
              </h2>
              <dl class="pairs" id="outbound">
                <dt>Requests</dt>
                <dd>{fmtNum(d.outbound_requests)}</dd>
                <dt>Bytes</dt>
                <dd>{fmtBytes(d.outbound_bytes)}</dd>
                <dt>Time waiting</dt>
                <dd>{fmtMs(d.outbound_ms)}</dd>
              </dl>
            </section>
          </div>
          <section>
            <h2 id="log-title">Log</h2>
            {d.logs && d.logs.length ? (
              <ol class="log" id="invocation-logs">
                {d.logs.map((l, n) => (
                  <li key={n} class={`stream-${l.stream}`}>
                    <span class="log-time">{l.at.slice(11, 23)}</span>
                    <span class="log-stream">{l.stream}</span>
                    <span class="log-text">{l.text}</span>
                  </li>
                ))}
              </ol>
            ) : (
              <Empty>This invocation wrote nothing.</Empty>
            )}
          </section>
        </>
      ) : null}
    </section>
  );
}
