// The node's readiness: problems, brokers, triggers, key-value store, disk.
import { get } from '../api.js';
import { Empty, Messages, PageTitle, TableWrap, useApi } from '../components.jsx';
import { fmtBytes, fmtTime } from '../util.js';

export function HealthPage() {
  // 503 is an answer here: the node is up but not ready.
  const ready = useApi((signal) => get('/readyz', { signal, accept: [503], token: '' }), [], 10000);
  const h = ready.data;
  const isReady = h && (h.status === 'ready' || h.status === 'ok');
  const disk = h && h.disk;
  return (
    <section>
      <PageTitle>Health</PageTitle>
      <Messages error={ready.error} />
      {h ? (
        <>
          <div class={`card readiness ${isReady ? 'is-ready' : 'not-ready'}`}>
            <p id="readiness" class="big">
              {isReady ? 'Ready' : `Not ready (${h.status})`}
            </p>
            <p>
              {h.live_apps} live app{h.live_apps === 1 ? '' : 's'} serving.
            </p>
          </div>
          <section>
            <h2 id="problems-title">Problems</h2>
            {h.problems && h.problems.length ? (
              <ul class="problems">
                {h.problems.map((p) => (
                  <li key={p}>{p}</li>
                ))}
              </ul>
            ) : (
              <Empty>None.</Empty>
            )}
          </section>
          <section>
            <h2 id="brokers-title">Brokers</h2>
            {h.brokers && h.brokers.length ? (
              <TableWrap label="Brokers">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Broker</th>
                      <th scope="col">URL</th>
                      <th scope="col">Connected</th>
                      <th scope="col">Connections</th>
                      <th scope="col">Since</th>
                      <th scope="col">Error</th>
                    </tr>
                  </thead>
                  <tbody>
                    {h.brokers.map((b) => (
                      <tr key={`${b.broker}-${b.url}`}>
                        <th scope="row">{b.broker}</th>
                        <td class="mono">{b.url}</td>
                        <td>{b.connected ? <span class="badge badge-ok">connected</span> : <span class="badge badge-error">down</span>}</td>
                        <td class="num">{b.connections}</td>
                        <td>{fmtTime(b.since)}</td>
                        <td>{b.error || '—'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            ) : (
              <Empty>No trigger uses a broker.</Empty>
            )}
          </section>
          <section>
            <h2 id="triggers-title">Triggers</h2>
            {h.triggers && h.triggers.length ? (
              <TableWrap label="Triggers">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Function</th>
                      <th scope="col">Trigger</th>
                      <th scope="col">State</th>
                      <th scope="col">Since</th>
                      <th scope="col">Error</th>
                    </tr>
                  </thead>
                  <tbody>
                    {h.triggers.map((t) => (
                      <tr key={`${t.function}-${t.trigger}`}>
                        <th scope="row">{t.function}</th>
                        <td class="mono">{t.trigger}</td>
                        <td>
                          <span class={`badge ${t.state === 'running' ? 'badge-ok' : t.state === 'retrying' ? 'badge-error' : 'badge-idle'}`}>{t.state}</span>
                        </td>
                        <td>{fmtTime(t.since)}</td>
                        <td>{t.error || '—'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            ) : (
              <Empty>No cron, NATS, JetStream or MQTT trigger is live.</Empty>
            )}
          </section>
          <div class="two-col">
            <section class="card">
              <h2 id="kv-title" class="h-small">
                Key-value store
              </h2>
              {h.keyvalue ? (
                <dl class="pairs">
                  <dt>Backend</dt>
                  <dd>{h.keyvalue.backend}</dd>
                  <dt>Location</dt>
                  <dd class="mono wrap">{h.keyvalue.location}</dd>
                  <dt>Reachable</dt>
                  <dd>{h.keyvalue.reachable ? 'yes' : `no${h.keyvalue.error ? `: ${h.keyvalue.error}` : ''}`}</dd>
                </dl>
              ) : (
                <p class="muted">Not reported.</p>
              )}
            </section>
            <section class="card">
              <h2 id="disk-title" class="h-small">
                Disk
              </h2>
              {disk ? (
                <dl class="pairs">
                  <dt>Data directory</dt>
                  <dd class="mono wrap">{disk.data_dir}</dd>
                  <dt>Data size</dt>
                  <dd>{fmtBytes(disk.data_dir_bytes)}</dd>
                  <dt>Ledger</dt>
                  <dd>
                    {fmtBytes(disk.ledger_bytes)}
                    {disk.ledger_max_bytes ? ` of ${fmtBytes(disk.ledger_max_bytes)}` : ''}
                  </dd>
                  <dt>Free</dt>
                  <dd>
                    {fmtBytes(disk.disk_free_bytes)} of {fmtBytes(disk.disk_total_bytes)}
                  </dd>
                  {disk.error ? (
                    <>
                      <dt>Error</dt>
                      <dd>{disk.error}</dd>
                    </>
                  ) : null}
                </dl>
              ) : (
                <p class="muted">Not reported.</p>
              )}
            </section>
          </div>
        </>
      ) : ready.loading ? (
        <p>Checking…</p>
      ) : null}
    </section>
  );
}
