// Queues, a function's dead letters (redrive one or all) and its event
// timeline (replay one event).
import { useState } from 'preact/hooks';
import { get, localApp, post, v1 } from '../api.js';
import { askConfirm, Empty, FunctionSelect, Messages, PageTitle, TableWrap, useApi, useFunctions } from '../components.jsx';
import { fmtSeconds, fmtTime, href, navigate } from '../util.js';

export function EventsPage({ query }) {
  const fn = query.get('fn') || '';
  const functions = useFunctions();
  const queues = useApi((signal) => get(v1('/queues'), { signal }), [], 5000);
  const dead = useApi(
    (signal) => (fn ? get(v1(`/functions/${encodeURIComponent(fn)}/dead-letters`), { signal }) : Promise.resolve(null)),
    [fn],
    5000,
  );
  const events = useApi(
    (signal) => (fn ? get(v1(`/functions/${encodeURIComponent(fn)}/events?limit=50`), { signal }) : Promise.resolve(null)),
    [fn],
    5000,
  );
  const [status, setStatus] = useState('');
  const [actionError, setActionError] = useState('');
  const [busy, setBusy] = useState(false);
  const qs = (queues.data && queues.data.queues) || [];
  const deadList = (dead.data && dead.data.events) || [];
  const eventList = (events.data && events.data.events) || [];
  const fnPath = `/functions/${encodeURIComponent(fn)}`;

  const run = async (confirmation, action) => {
    if (!(await askConfirm(confirmation))) return;
    setBusy(true);
    setStatus('');
    setActionError('');
    try {
      setStatus(await action());
      dead.reload();
      events.reload();
      queues.reload();
    } catch (e) {
      setActionError(e.message);
    } finally {
      setBusy(false);
    }
  };
  const redrive = (id) =>
    run(
      id
        ? { title: 'Redrive this dead letter?', message: `Event ${id} goes back into the queue of ${fn} with fresh attempts.`, confirmLabel: 'Redrive' }
        : {
            title: `Redrive all dead letters of ${fn}?`,
            message: `${deadList.length} dead letter${deadList.length === 1 ? '' : 's'} go back into the queue with fresh attempts.`,
            confirmLabel: 'Redrive all',
          },
      async () => {
        const r = await post(v1(`${fnPath}/dead-letters/redrive${id ? `?id=${encodeURIComponent(id)}` : ''}`));
        return `Redriven ${r.redriven}`;
      },
    );
  const replay = (id) =>
    run(
      { title: 'Replay this event?', message: `A copy of event ${id} is queued for ${fn} again.`, confirmLabel: 'Replay' },
      async () => {
        const r = await post(v1(`${fnPath}/events/${encodeURIComponent(id)}/replay`));
        return `Replayed event ${id} as ${r.id} (${r.state})`;
      },
    );

  return (
    <section>
      <PageTitle>Events</PageTitle>
      <Messages error={queues.error} />
      <section>
        <h2 id="queues-title">Queues</h2>
        {queues.data && !qs.length ? <Empty>No function consumes a queue.</Empty> : null}
        {qs.length ? (
          <TableWrap label="Queues">
            <table id="queues-table">
              <thead>
                <tr>
                  <th scope="col">Function</th>
                  <th scope="col">Queues consumed</th>
                  <th scope="col">Waiting</th>
                  <th scope="col">Oldest waiting</th>
                  <th scope="col">Dead letters</th>
                </tr>
              </thead>
              <tbody>
                {qs.map((q) => {
                  const key = `${localApp(q.app)}/${q.function}`;
                  return (
                    <tr key={key} data-function={key} class={key === fn ? 'is-selected' : ''}>
                      <th scope="row">
                        <a href={href(['events'], { fn: key })} aria-current={key === fn ? 'true' : undefined}>
                          {key}
                        </a>
                      </th>
                      <td>{(q.queues || (q.queue ? [q.queue] : [])).join(', ') || <span class="muted">async invocations only</span>}</td>
                      <td class="num">{q.waiting}</td>
                      <td>{q.oldest_event_age_seconds === null || q.oldest_event_age_seconds === undefined ? '—' : fmtSeconds(q.oldest_event_age_seconds)}</td>
                      <td class="num dead-count">{q.dead_letters}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableWrap>
        ) : null}
      </section>
      <form class="filters" aria-label="Function" onSubmit={(e) => e.preventDefault()}>
        <FunctionSelect id="events-function" value={fn} functions={functions.data} onChange={(v) => navigate(href(['events'], { fn: v }), true)} />
      </form>
      <Messages error={actionError || dead.error || events.error} info={status} id="events-status" />
      {!fn ? <Empty>Choose a function to see its dead letters and events.</Empty> : null}
      {fn ? (
        <section>
          <h2 id="dead-title">Dead letters of {fn}</h2>
          <div class="actions">
            <button type="button" onClick={() => redrive(null)} disabled={busy || !deadList.length}>
              Redrive all
            </button>
          </div>
          {dead.data && !deadList.length ? <Empty>No dead letters.</Empty> : null}
          {deadList.length ? (
            <TableWrap label="Dead letters, oldest first">
              <table id="dead-letters-table">
                <thead>
                  <tr>
                    <th scope="col">Event</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Created</th>
                    <th scope="col">Last tried</th>
                    <th scope="col">Action</th>
                  </tr>
                </thead>
                <tbody>
                  {deadList.map((e) => (
                    <tr key={e.id} data-event={e.id}>
                      <th scope="row" class="mono">
                        {e.id}
                      </th>
                      <td class="error-text">{e.last_error || '—'}</td>
                      <td class="num">
                        {e.attempts} / {e.max_attempts}
                      </td>
                      <td>{fmtTime(e.created_at)}</td>
                      <td>{fmtTime(e.updated_at)}</td>
                      <td>
                        <button type="button" disabled={busy} onClick={() => redrive(e.id)}>
                          Redrive<span class="visually-hidden"> event {e.id}</span>
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          ) : null}
        </section>
      ) : null}
      {fn ? (
        <section>
          <h2 id="timeline-title">Recent events of {fn}</h2>
          {events.data && !eventList.length ? <Empty>No events yet.</Empty> : null}
          {eventList.length ? (
            <TableWrap label="Recent events, newest first">
              <table id="events-table">
                <thead>
                  <tr>
                    <th scope="col">Event</th>
                    <th scope="col">State</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Created</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Action</th>
                  </tr>
                </thead>
                <tbody>
                  {eventList.map((e) => (
                    <tr key={e.id} data-event={e.id} data-state={e.state}>
                      <th scope="row" class="mono">
                        {e.id}
                      </th>
                      <td>
                        <span class={`badge ${e.state === 'dead' ? 'badge-error' : e.state === 'succeeded' ? 'badge-ok' : 'badge-idle'}`}>{e.state}</span>
                      </td>
                      <td class="num">
                        {e.attempts} / {e.max_attempts}
                      </td>
                      <td>{fmtTime(e.created_at)}</td>
                      <td>{e.state === 'succeeded' ? `${e.result_status ?? ''} ${(e.result || '').slice(0, 80)}` : e.last_error || '—'}</td>
                      <td>
                        <button type="button" disabled={busy} onClick={() => replay(e.id)}>
                          Replay<span class="visually-hidden"> event {e.id}</span>
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          ) : null}
        </section>
      ) : null}
    </section>
  );
}
