// Usage per app and function over a period: table, totals, a bar chart of
// GB-seconds or cost, and a CSV export.
import { useState } from 'preact/hooks';
import { get, localApp, v1 } from '../api.js';
import { Empty, Messages, PageTitle, TableWrap, useApi } from '../components.jsx';
import { download, fmtBytes, fmtMoney, fmtNum, href, navigate, toCsv } from '../util.js';

const PERIODS = [
  ['1h', 'Last hour'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
];

const CSV_HEADER = [
  'app',
  'function',
  'requests',
  'errors',
  'cold_starts',
  'gb_seconds',
  'cpu_seconds',
  'duration_seconds',
  'bytes_in',
  'bytes_out',
  'sampled',
  'cost',
  'currency',
];

export function UsagePage({ query }) {
  const period = query.get('period') || '24h';
  const [metric, setMetric] = useState('gb_seconds');
  const usage = useApi((signal) => get(v1(`/usage?since=${encodeURIComponent(period)}`), { signal }), [period], 30000);
  const u = usage.data;
  const rows = (u && u.functions) || [];
  const currency = u ? u.prices.currency : '';
  const top = rows.reduce((m, r) => Math.max(m, r[metric] || 0), 0);
  const exportCsv = () => {
    const data = rows.map((r) => [
      localApp(r.app),
      r.function,
      r.requests,
      r.errors,
      r.cold_starts,
      r.gb_seconds,
      r.cpu_seconds,
      r.duration_seconds,
      r.bytes_in,
      r.bytes_out,
      r.sampled ?? 0,
      r.cost,
      currency,
    ]);
    const t = u.total;
    data.push(['TOTAL', '', t.requests, t.errors, t.cold_starts, t.gb_seconds, t.cpu_seconds, t.duration_seconds, t.bytes_in, t.bytes_out, t.sampled ?? 0, t.cost, currency]);
    download(`stratus-usage-${period}.csv`, toCsv(CSV_HEADER, data));
  };
  const metricLabel = metric === 'cost' ? `Cost (${currency})` : 'GB-seconds';
  return (
    <section>
      <PageTitle>Usage</PageTitle>
      <form class="filters" aria-label="Usage period" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="usage-period">Period</label>
          <select id="usage-period" value={period} onChange={(e) => navigate(href(['usage'], { period: e.currentTarget.value }), true)}>
            {PERIODS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="usage-metric">Chart</label>
          <select id="usage-metric" value={metric} onChange={(e) => setMetric(e.currentTarget.value)}>
            <option value="gb_seconds">GB-seconds</option>
            <option value="cost">Cost</option>
          </select>
        </div>
        <div class="field field-button">
          <button type="button" onClick={exportCsv} disabled={!u}>
            Export CSV
          </button>
        </div>
      </form>
      <Messages error={usage.error} />
      {u ? (
        <p class="muted">
          Prices: {u.prices.per_gb_second} {currency} per GB-second, {u.prices.per_million_requests} {currency} per million requests.
          {u.granularity === 'hour' ? ' Counted from hourly roll-ups.' : ''}
          {u.budget && u.budget.warning ? ` ${u.budget.warning}` : ''}
        </p>
      ) : null}
      {u && !rows.length ? <Empty>No usage in this period.</Empty> : null}
      {rows.length ? (
        <>
          <section class="card">
            <h2 id="usage-chart-title" class="h-small">
              {metricLabel} per function
            </h2>
            <ul class="bars" id="usage-bars">
              {rows.map((r) => {
                const v = r[metric] || 0;
                const pct = top > 0 ? Math.max(0.5, (v / top) * 100) : 0;
                return (
                  <li key={`${r.app}/${r.function}`}>
                    <span class="bar-label">
                      {localApp(r.app)}/{r.function}
                    </span>
                    <span class="bar-track" aria-hidden="true">
                      <span class="bar" style={{ width: `${pct}%` }} />
                    </span>
                    <span class="bar-value">{metric === 'cost' ? fmtMoney(v, currency) : fmtNum(v, 4)}</span>
                  </li>
                );
              })}
            </ul>
          </section>
          <TableWrap label="Usage per function">
            <table id="usage-table">
              <thead>
                <tr>
                  <th scope="col">App</th>
                  <th scope="col">Function</th>
                  <th scope="col">Requests</th>
                  <th scope="col">Errors</th>
                  <th scope="col">Cold starts</th>
                  <th scope="col">GB-s</th>
                  <th scope="col">CPU s</th>
                  <th scope="col">Bytes in / out</th>
                  <th scope="col">Cost</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={`${r.app}/${r.function}`}>
                    <td>
                      <a href={href(['apps', localApp(r.app)])}>{localApp(r.app)}</a>
                    </td>
                    <th scope="row">
                      <a href={href(['functions', localApp(r.app), r.function])}>{r.function}</a>
                    </th>
                    <td class="num">{fmtNum(r.requests)}</td>
                    <td class="num">{fmtNum(r.errors)}</td>
                    <td class="num">{fmtNum(r.cold_starts)}</td>
                    <td class="num">{fmtNum(r.gb_seconds, 4)}</td>
                    <td class="num">{fmtNum(r.cpu_seconds, 3)}</td>
                    <td class="num">
                      {fmtBytes(r.bytes_in)} / {fmtBytes(r.bytes_out)}
                    </td>
                    <td class="num">{fmtMoney(r.cost, currency)}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row" colSpan={2}>
                    Total
                  </th>
                  <td class="num">{fmtNum(u.total.requests)}</td>
                  <td class="num">{fmtNum(u.total.errors)}</td>
                  <td class="num">{fmtNum(u.total.cold_starts)}</td>
                  <td class="num">{fmtNum(u.total.gb_seconds, 4)}</td>
                  <td class="num">{fmtNum(u.total.cpu_seconds, 3)}</td>
                  <td class="num">
                    {fmtBytes(u.total.bytes_in)} / {fmtBytes(u.total.bytes_out)}
                  </td>
                  <td class="num">
                    <strong>{fmtMoney(u.total.cost, currency)}</strong>
                  </td>
                </tr>
              </tfoot>
            </table>
          </TableWrap>
        </>
      ) : null}
    </section>
  );
}
