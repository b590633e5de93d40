// A function's log, followed live (server-sent events read with fetch), with
// a text and a stream filter, pause and resume; the newest MAX_LINES kept.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { followSse, isAbort, v1 } from '../api.js';
import { Empty, FunctionSelect, Messages, PageTitle, useFunctions } from '../components.jsx';
import { href, navigate } from '../util.js';

const MAX_LINES = 2000;

export function LogsPage({ query }) {
  const fn = query.get('fn') || '';
  const functions = useFunctions();
  const [lines, setLines] = useState([]);
  const [paused, setPaused] = useState(false);
  const [text, setText] = useState('');
  const [stream, setStream] = useState('');
  const [state, setState] = useState('idle');
  const [error, setError] = useState('');
  const buffer = useRef([]);
  const pausedRef = useRef(false);
  const [pending, setPending] = useState(0);
  const wrap = useRef(null);
  const stick = useRef(true);
  // Keep the newest line in view while the reader is at the bottom.
  useLayoutEffect(() => {
    const el = wrap.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });

  useEffect(() => {
    buffer.current = [];
    setLines([]);
    setPending(0);
    setError('');
    if (!fn) {
      setState('idle');
      return undefined;
    }
    const controller = new AbortController();
    let alive = true;
    let retry = null;
    let last = null;
    const seen = new Set();
    let flushTimer = null;
    const flush = () => {
      flushTimer = null;
      if (!alive) return;
      if (pausedRef.current) {
        setPending(buffer.current.length);
        return;
      }
      setLines(buffer.current.slice());
    };
    const add = (line) => {
      const key = `${line.at}|${line.invocation_id}|${line.stream}|${line.text}`;
      if (seen.has(key)) return;
      seen.add(key);
      if (seen.size > MAX_LINES * 2) seen.clear();
      last = line.at || last;
      buffer.current.push(line);
      if (buffer.current.length > MAX_LINES) buffer.current.splice(0, buffer.current.length - MAX_LINES);
      if (!flushTimer) flushTimer = setTimeout(flush, 100);
    };
    const connect = async () => {
      setState('connecting');
      const p = new URLSearchParams({ follow: 'true', limit: '500' });
      p.set('since', last || '10m');
      try {
        const started = followSse(v1(`/functions/${encodeURIComponent(fn)}/logs?${p}`), {
          signal: controller.signal,
          onData: (line) => {
            if (alive) add(line);
          },
        });
        if (alive) setState('following');
        await started;
        if (!alive) return;
        setState('ended');
      } catch (e) {
        if (!alive || isAbort(e)) return;
        setError(e.message || String(e));
        setState('ended');
        if (e.status && e.status < 500 && e.status !== 0) return;
      }
      // The stream ended (the node restarted, a proxy cut it): follow again.
      retry = setTimeout(() => {
        if (alive) connect();
      }, 3000);
    };
    connect();
    return () => {
      alive = false;
      controller.abort();
      if (retry) clearTimeout(retry);
      if (flushTimer) clearTimeout(flushTimer);
    };
  }, [fn]);

  const togglePause = () => {
    const next = !paused;
    pausedRef.current = next;
    setPaused(next);
    if (!next) {
      setLines(buffer.current.slice());
      setPending(0);
    }
  };
  const needle = text.trim().toLowerCase();
  const shown = lines.filter((l) => (!stream || l.stream === stream) && (!needle || (l.text || '').toLowerCase().includes(needle)));
  return (
    <section>
      <PageTitle>Logs</PageTitle>
      <form class="filters" aria-label="Log filters" onSubmit={(e) => e.preventDefault()}>
        <FunctionSelect
          id="logs-function"
          value={fn}
          functions={functions.data}
          onChange={(v) => navigate(href(['logs'], { fn: v }), true)}
        />
        <div class="field">
          <label for="logs-filter">Filter text</label>
          <input id="logs-filter" type="search" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="logs-stream">Stream</label>
          <select id="logs-stream" value={stream} onChange={(e) => setStream(e.currentTarget.value)}>
            <option value="">stdout and stderr</option>
            <option value="stdout">stdout</option>
            <option value="stderr">stderr</option>
          </select>
        </div>
        <div class="field field-button">
          <button type="button" aria-pressed={paused ? 'true' : 'false'} onClick={togglePause} disabled={!fn}>
            {paused ? 'Resume' : 'Pause'}
          </button>
        </div>
        <div class="field field-button">
          <button
            type="button"
            disabled={!fn}
            onClick={() => {
              buffer.current = [];
              setLines([]);
              setPending(0);
            }}
          >
            Clear
          </button>
        </div>
      </form>
      <Messages error={functions.error || error} />
      <p class="muted" id="logs-state">
        {!fn
          ? 'Choose a function to follow its log.'
          : paused
            ? `Paused: ${pending} lines held (newest ${MAX_LINES} kept). Resume to show them.`
            : state === 'following'
              ? `Following: ${shown.length} of ${lines.length} lines shown (newest ${MAX_LINES} kept).`
              : state === 'connecting'
                ? 'Connecting…'
                : state === 'ended'
                  ? 'The stream ended; reconnecting…'
                  : ''}
      </p>
      {fn && !shown.length && state === 'following' ? <Empty>No lines yet{needle || stream ? ' match the filters' : ''}.</Empty> : null}
      {shown.length ? (
        <div
          class="log-wrap"
          role="region"
          aria-label="Log lines, oldest first"
          tabIndex={0}
          ref={wrap}
          onScroll={(e) => {
            const el = e.currentTarget;
            stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          }}
        >
          <ol class="log" id="log-lines">
            {shown.map((l, n) => (
              <li key={`${l.at}-${l.invocation_id}-${n}`} class={`stream-${l.stream}`}>
                <span class="log-time">{(l.at || '').slice(11, 23)}</span>
                <span class="log-stream">{l.stream}</span>
                <a class="log-inv mono" href={href(['invocations', l.invocation_id])} title={l.invocation_id}>
                  <span class="visually-hidden">Invocation </span>
                  {(l.invocation_id || '').slice(0, 8)}
                </a>
                <span class="log-text">{l.text}</span>
              </li>
            ))}
          </ol>
        </div>
      ) : null}
    </section>
  );
}
