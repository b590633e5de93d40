// Apps, and one app: its traffic (a canary beside the live version, its
// rollout history), its versions, activation and rollback, each version's
// manifest and capabilities, and the diff between two versions.
import { useEffect, useState } from 'preact/hooks';
import { get, localApp, post, put, v1 } from '../api.js';
import { askConfirm, Empty, Messages, PageTitle, TableWrap, useApi } from '../components.jsx';
import { diffVersions, fmtAgo, fmtBytes, fmtMs, fmtNum, fmtSeconds, fmtTime, href, jsonText, triggerText } from '../util.js';

/** A canary as `v3 · 50%`. */
function canaryText(c) {
  return `v${c.version} · ${c.percent}%`;
}

export function AppsPage() {
  const apps = useApi((signal) => get(v1('/apps'), { signal }), [], 5000);
  const list = apps.data || [];
  return (
    <section>
      <PageTitle>Apps</PageTitle>
      <Messages error={apps.error} />
      {apps.loading && !apps.data ? <p>Loading apps…</p> : null}
      {apps.data && !list.length ? <Empty>No apps are deployed yet. Deploy one with <code>stratus deploy</code>.</Empty> : null}
      {list.length ? (
        <TableWrap label="Apps">
          <table id="apps-table">
            <thead>
              <tr>
                <th scope="col">App</th>
                <th scope="col">Live version</th>
                <th scope="col">Canary</th>
                <th scope="col">Versions</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {list.map((a) => {
                const name = localApp(a.name);
                return (
                  <tr key={a.name} data-app={name}>
                    <th scope="row">
                      <a href={href(['apps', name])}>{name}</a>
                    </th>
                    <td class="live-version">{a.live_version ?? 'none'}</td>
                    <td class="canary">
                      {a.canary ? (
                        canaryText(a.canary)
                      ) : (
                        <>
                          <span aria-hidden="true">–</span>
                          <span class="visually-hidden">none</span>
                        </>
                      )}
                    </td>
                    <td>{a.versions}</td>
                    <td>
                      <time dateTime={new Date(a.updated_at).toISOString()} title={fmtTime(a.updated_at)}>
                        {fmtAgo(a.updated_at)}
                      </time>
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

function List({ items, empty = 'none' }) {
  if (!items || !items.length) return <span class="muted">{empty}</span>;
  return (
    <ul class="chips">
      {items.map((i) => (
        <li key={i}>
          <code>{i}</code>
        </li>
      ))}
    </ul>
  );
}

/** One function of a version: limits and capabilities from its spec. */
function FunctionSpec({ fn, version }) {
  const spec = fn.spec || {};
  const keys = (o) => Object.keys(o || {}).sort();
  return (
    <article class="fn-spec" aria-labelledby={`v${version}-${fn.name}`}>
      <h3 id={`v${version}-${fn.name}`}>{fn.name}</h3>
      <dl class="pairs">
        <dt>Routes</dt>
        <dd>
          <List items={fn.routes || spec.routes} />
        </dd>
        <dt>Triggers</dt>
        <dd>
          <List items={(spec.triggers || []).map(triggerText)} />
        </dd>
        <dt>Outbound allow-list</dt>
        <dd>
          <List items={(spec.allowed_outbound || []).map((r) => (typeof r === 'string' ? r : jsonText(r)))} empty="no outbound HTTP" />
        </dd>
        <dt>Key-value buckets</dt>
        <dd>
          <List items={spec.keyvalue} />
        </dd>
        <dt>Config keys</dt>
        <dd>
          <List items={keys(spec.config)} />
        </dd>
        <dt>Secrets</dt>
        <dd>
          <List items={spec.secrets} />
        </dd>
        <dt>Environment</dt>
        <dd>
          <List items={keys(spec.env)} />
        </dd>
        <dt>Limits</dt>
        <dd>
          memory {fmtBytes(fn.memory_bytes ?? spec.memory)}, timeout {fn.timeout_ms ?? spec.timeout_ms} ms, body{' '}
          {fmtBytes(fn.max_body_bytes ?? spec.max_body)}, concurrency {fn.max_concurrency ?? spec.max_concurrency}
          {spec.max_outbound_requests !== undefined ? `, outbound requests ${spec.max_outbound_requests}` : ''}
          {spec.min_warm ? ', kept warm' : ''}
        </dd>
        <dt>Component</dt>
        <dd>
          <code class="digest">sha256:{fn.component_sha256}</code>
        </dd>
      </dl>
      <details>
        <summary>Manifest of {fn.name} as stored</summary>
        <pre class="json">{JSON.stringify(fn.spec ?? null, null, 2)}</pre>
      </details>
    </article>
  );
}

function Diff({ versions }) {
  const numbers = versions.map((v) => v.version);
  const [from, setFrom] = useState(numbers.length > 1 ? numbers[1] : numbers[0]);
  const [to, setTo] = useState(numbers[0]);
  useEffect(() => {
    if (!numbers.includes(Number(from))) setFrom(numbers.length > 1 ? numbers[1] : numbers[0]);
    if (!numbers.includes(Number(to))) setTo(numbers[0]);
  }, [numbers.join(',')]);
  const a = versions.find((v) => v.version === Number(from));
  const b = versions.find((v) => v.version === Number(to));
  const diff = a && b ? diffVersions(a.functions, b.functions) : null;
  const select = (id, label, value, set) => (
    <div class="field">
      <label for={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => set(Number(e.currentTarget.value))}>
        {numbers.map((n) => (
          <option key={n} value={n}>
            Version {n}
          </option>
        ))}
      </select>
    </div>
  );
  return (
    <section class="card">
      <h2 id="compare-title">Compare versions</h2>
      <div class="filters">
        {select('diff-from', 'From version', from, setFrom)}
        {select('diff-to', 'To version', to, setTo)}
      </div>
      <div id="version-diff" aria-live="polite">
        {!diff ? null : diff.identical ? (
          <p>
            Versions {from} and {to} have the same functions and manifests.
          </p>
        ) : (
          <div>
            {diff.added.length ? (
              <div>
                Functions added: <List items={diff.added} />
              </div>
            ) : null}
            {diff.removed.length ? (
              <div>
                Functions removed: <List items={diff.removed} />
              </div>
            ) : null}
            {diff.changed.map((c) => (
              <div key={c.name}>
                <h3>{c.name}</h3>
                <TableWrap label={`Changes to ${c.name}`}>
                  <table class="diff">
                    <thead>
                      <tr>
                        <th scope="col">Key</th>
                        <th scope="col">Change</th>
                        <th scope="col">Version {from}</th>
                        <th scope="col">Version {to}</th>
                      </tr>
                    </thead>
                    <tbody>
                      {c.changes.map((ch) => (
                        <tr key={ch.key} class={`diff-${ch.kind}`}>
                          <th scope="row">
                            <code>{ch.key}</code>
                          </th>
                          <td>{ch.kind}</td>
                          <td>
                            <code class="wrap">{jsonText(ch.from)}</code>
                          </td>
                          <td>
                            <code class="wrap">{jsonText(ch.to)}</code>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableWrap>
              </div>
            ))}
          </div>
        )}
      </div>
    </section>
  );
}

const ACTIONS = {
  started: ['started', 'badge-idle'],
  stepped: ['stepped', 'badge-idle'],
  promoted: ['promoted', 'badge-ok'],
  rolled_back: ['rolled back', 'badge-error'],
  ended: ['ended', 'badge-idle'],
};

function stickyText(sticky) {
  if (!sticky) return 'no: each request is split on its own';
  if (sticky.header) return `by the request header ${sticky.header}`;
  if (sticky.cookie) return `by the cookie ${sticky.cookie}`;
  return jsonText(sticky);
}

/** This step's measures of both sides of the split, as a table. */
function TrafficWindow({ measures: w, canary }) {
  if (!w) return <Empty>No measures of this step yet.</Empty>;
  const rows = [
    ['Stable', w.stable],
    ['Canary', w.canary],
  ];
  const min = canary.policy ? canary.policy.min_requests : null;
  return (
    <>
      <TableWrap label="This step's measures">
        <table id="traffic-window">
          <thead>
            <tr>
              <th scope="col">Side</th>
              <th scope="col">Version</th>
              <th scope="col">Requests</th>
              <th scope="col">Errors</th>
              <th scope="col">Error rate</th>
              <th scope="col">p99</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(([side, m]) => (
              <tr key={side} data-side={side.toLowerCase()}>
                <th scope="row">{side}</th>
                <td>{m.version}</td>
                <td class="num">{fmtNum(m.requests)}</td>
                <td class="num">{fmtNum(m.errors)}</td>
                <td class="num">{fmtNum(m.error_percent, 1)} %</td>
                <td class="num">{fmtMs(m.p99_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {min !== null ? (
        <p class="muted" id="traffic-window-summary">
          The canary is judged once it has served {fmtNum(min)} requests in a step: {fmtNum(w.canary.requests)} so far in this one.
        </p>
      ) : null}
    </>
  );
}

/** The app's split: its live version and its canary, with the controls. */
function Traffic({ report, busy, onPromote, onStop }) {
  const c = report.canary;
  const p = c && c.policy;
  return (
    <section class="card" id="traffic" aria-labelledby="traffic-title">
      <h2 id="traffic-title">Traffic</h2>
      <dl class="pairs">
        <dt>Live version</dt>
        <dd id="traffic-live">{report.live_version ?? 'none'}</dd>
        <dt>Canary</dt>
        <dd id="traffic-canary">
          {c ? (
            <>
              version {c.version} · <strong>{c.percent}%</strong> of requests
              <span class="muted"> (the live version serves {100 - c.percent}%)</span>
            </>
          ) : (
            'none: the live version serves every request'
          )}
        </dd>
        {c ? (
          <>
            <dt>Next steps</dt>
            <dd>
              {c.steps && c.steps.length
                ? `${c.steps.map((s) => `${s}%`).join(' → ')}${c.steps.includes(100) ? ' (100% promotes it)' : ''}`
                : `none: it stays at ${c.percent}% until the split is changed`}
            </dd>
            <dt>Step interval</dt>
            <dd>{fmtSeconds(c.interval_ms / 1000)}</dd>
            <dt>This step began</dt>
            <dd>
              <time dateTime={new Date(c.since).toISOString()} title={fmtTime(c.since)}>
                {fmtAgo(c.since)}
              </time>
            </dd>
            <dt>Sticky</dt>
            <dd>{stickyText(c.sticky)}</dd>
            <dt>Rollback policy</dt>
            <dd>
              {p
                ? `rolled back when its error rate is more than ${fmtNum(p.max_error_rate_increase, 2)} percentage points above the stable version's, or its p99 more than ${fmtNum(p.max_p99_ratio, 2)} times the stable version's; judged after ${fmtNum(p.min_requests)} requests in a step`
                : '—'}
            </dd>
          </>
        ) : null}
      </dl>
      {c ? (
        <>
          <h3 id="traffic-window-title">This step</h3>
          <TrafficWindow measures={report.window} canary={c} />
          <div class="actions">
            <button type="button" class="primary" onClick={onPromote} disabled={busy}>
              Promote canary
            </button>
            <button type="button" class="danger" onClick={onStop} disabled={busy}>
              Stop canary
            </button>
          </div>
        </>
      ) : null}
    </section>
  );
}

/** What happened to the app's traffic, newest first. */
function RolloutHistory({ history }) {
  const rows = [...(history || [])].reverse();
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">Rollout history</h2>
      {rows.length ? (
        <>
          <p class="muted">Newest first.</p>
          <TableWrap label="Rollout history, newest first">
            <table id="history-table">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Action</th>
                  <th scope="col">Stable</th>
                  <th scope="col">Canary</th>
                  <th scope="col">Share</th>
                  <th scope="col">By</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((e, i) => {
                  const [label, badge] = ACTIONS[e.action] || [String(e.action), 'badge-idle'];
                  return (
                    <tr key={`${e.at}-${e.action}-${i}`} data-action={e.action}>
                      <th scope="row">
                        <time dateTime={new Date(e.at).toISOString()}>{fmtTime(e.at)}</time>
                      </th>
                      <td>
                        <span class={`badge ${badge}`}>{label}</span>
                      </td>
                      <td>{e.stable}</td>
                      <td>{e.canary}</td>
                      <td class="num">{e.percent}%</td>
                      <td class="wrap">{e.by}</td>
                      <td class="wrap">{e.reason}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableWrap>
        </>
      ) : (
        <Empty>No canary has run for this app yet.</Empty>
      )}
    </section>
  );
}

export function AppPage({ app }) {
  const detail = useApi((signal) => get(v1(`/apps/${encodeURIComponent(app)}`), { signal }), [app], 10000);
  const versions = useApi((signal) => get(v1(`/apps/${encodeURIComponent(app)}/versions`), { signal }), [app], 10000);
  const traffic = useApi((signal) => get(v1(`/apps/${encodeURIComponent(app)}/traffic`), { signal }), [app], 10000);
  const [status, setStatus] = useState('');
  const [actionError, setActionError] = useState('');
  const [busy, setBusy] = useState(false);
  const d = detail.data;
  const list = versions.data || [];
  const live = d ? d.live_version : null;
  const earlier = list.some((v) => live !== null && v.version < live);
  const t = traffic.data;
  const canary = t ? t.canary : d ? d.canary : null;

  // `send` makes the change once confirmed; then every part of the page
  // is read again.
  const act = async (confirmation, send, done) => {
    if (!(await askConfirm(confirmation))) return;
    setBusy(true);
    setActionError('');
    setStatus('');
    try {
      const r = await send();
      setStatus(done(r));
      detail.reload();
      versions.reload();
      traffic.reload();
    } catch (e) {
      setActionError(e.message);
    } finally {
      setBusy(false);
    }
  };
  const rollback = () =>
    act(
      {
        title: `Roll back ${app}?`,
        message: `The version before ${live} becomes live for ${app}; requests in flight finish on version ${live}.`,
        confirmLabel: 'Roll back',
        danger: true,
      },
      () => post(v1(`/apps/${encodeURIComponent(app)}/rollback`)),
      (r) => `Rolled back: ${app} is live at version ${r.live_version}.`,
    );
  const activate = (n) =>
    act(
      {
        title: `Activate version ${n}?`,
        message: `Version ${n} of ${app} becomes live at once, replacing version ${live ?? 'none'}.`,
        confirmLabel: `Activate version ${n}`,
      },
      () => post(v1(`/apps/${encodeURIComponent(app)}/versions/${n}/activate`)),
      (r) => `${app} is live at version ${r.live_version}.`,
    );
  // One version at 100 % ends the canary: the canary itself (promoted) or
  // the live one (ended).
  const split = (version) => () =>
    put(v1(`/apps/${encodeURIComponent(app)}/traffic`), { json: { split: [{ version, percent: 100 }] } });
  const promote = () =>
    canary &&
    act(
      {
        title: `Promote version ${canary.version}?`,
        message: `Version ${canary.version} of ${app} becomes live and serves every request, replacing version ${live ?? 'none'}; the canary ends.`,
        confirmLabel: 'Promote canary',
      },
      split(canary.version),
      (r) => `Promoted: ${app} is live at version ${r.live_version}.`,
    );
  const stop = () =>
    canary &&
    act(
      {
        title: `Stop the canary of ${app}?`,
        message: `Version ${canary.version} stops serving its ${canary.percent}% of requests; version ${live ?? 'none'} serves them all.`,
        confirmLabel: 'Stop canary',
        danger: true,
      },
      split(live),
      (r) => `Canary stopped: ${app} serves version ${r.live_version} alone.`,
    );

  return (
    <section>
      <p class="crumbs">
        <a href="#/apps">Apps</a> / {app}
      </p>
      <PageTitle>App {app}</PageTitle>
      <Messages error={actionError || detail.error || versions.error || traffic.error} info={status} id="app-status" />
      {d ? (
        <div class="card">
          <dl class="pairs summary">
            <dt>Live version</dt>
            <dd id="live-version">{live ?? 'none'}</dd>
            <dt>Versions</dt>
            <dd>{d.versions}</dd>
            <dt>Updated</dt>
            <dd>{fmtTime(d.updated_at)}</dd>
            <dt>Namespace</dt>
            <dd>{d.namespace}</dd>
          </dl>
          <div class="actions">
            <button type="button" class="danger" onClick={rollback} disabled={busy || !earlier}>
              Roll back
            </button>
            <a href={href(['functions'])}>Live functions</a>
          </div>
        </div>
      ) : detail.loading ? (
        <p>Loading…</p>
      ) : null}
      {t ? (
        <>
          <Traffic report={t} busy={busy} onPromote={promote} onStop={stop} />
          <RolloutHistory history={t.history} />
        </>
      ) : traffic.loading ? (
        <p>Loading traffic…</p>
      ) : null}
      {list.length ? (
        <section>
          <h2 id="versions-title">Versions</h2>
          <TableWrap label="Versions">
            <table id="versions-table">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Created</th>
                  <th scope="col">Status</th>
                  <th scope="col">Functions</th>
                  <th scope="col">Action</th>
                </tr>
              </thead>
              <tbody>
                {list.map((v) => (
                  <tr key={v.version} data-version={v.version} class={v.live ? 'is-live' : ''}>
                    <th scope="row">{v.version}</th>
                    <td>{fmtTime(v.created_at)}</td>
                    <td>
                      {v.live ? (
                        <span class="badge badge-ok">Live</span>
                      ) : canary && canary.version === v.version ? (
                        <span class="badge badge-warn">Canary {canary.percent}%</span>
                      ) : (
                        <span class="muted">inactive</span>
                      )}
                    </td>
                    <td>{v.functions.map((f) => f.name).join(', ')}</td>
                    <td>
                      {v.live ? null : (
                        <button type="button" disabled={busy} onClick={() => activate(v.version)}>
                          Activate<span class="visually-hidden"> version {v.version}</span>
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </section>
      ) : null}
      {list.length > 1 ? <Diff versions={list} /> : null}
      {list.length ? (
        <section>
          <h2 id="manifests-title">Manifests and capabilities</h2>
          {list.map((v) => (
            <details key={v.version} open={v.live} class="version-detail">
              <summary>
                Version {v.version}
                {v.live ? ' (live)' : ''}: {v.functions.length} function{v.functions.length === 1 ? '' : 's'}
              </summary>
              {v.functions.map((f) => (
                <FunctionSpec key={f.name} fn={f} version={v.version} />
              ))}
            </details>
          ))}
        </section>
      ) : null}
    </section>
  );
}
