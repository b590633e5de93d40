// Shared pieces: data loading with polling, messages, tables, the
// confirmation dialog, charts, the function picker.
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { get, isAbort, localApp, v1 } from './api.js';

/**
 * Loads `load(signal)` when `deps` change and, with `interval` (ms), again
 * that long after each answer. Returns { data, error, loading, reload }.
 * Errors are kept as messages, never thrown.
 */
export function useApi(load, deps, interval = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    const controller = new AbortController();
    let timer = null;
    let alive = true;
    setState((s) => ({ ...s, loading: true }));
    const run = async () => {
      try {
        const data = await load(controller.signal);
        if (alive) setState({ data, error: null, loading: false });
      } catch (e) {
        if (!alive || isAbort(e)) return;
        setState((s) => ({ data: s.data, error: e && e.message ? e.message : String(e), loading: false }));
      }
      if (alive && interval > 0) timer = setTimeout(run, interval);
    };
    run();
    return () => {
      alive = false;
      controller.abort();
      if (timer) clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { ...state, reload };
}

/** A polite live region holding the page's error and status messages. */
export function Messages({ error, info, id }) {
  return (
    <div class="messages" aria-live="polite" id={id}>
      {error ? (
        <p class="notice notice-error">
          <strong>Error:</strong> {error}
        </p>
      ) : null}
      {info ? <p class="notice notice-info">{info}</p> : null}
    </div>
  );
}

/** A horizontally scrollable, focusable, labelled table container. */
export function TableWrap({ label, children }) {
  return (
    <div class="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

export function Empty({ children }) {
  return <p class="empty">{children}</p>;
}

// ---- confirmation dialog ----

let openConfirm = null;

/** Asks for confirmation in a modal <dialog>; resolves true or false. */
export function askConfirm(options) {
  if (!openConfirm) return Promise.resolve(false);
  return new Promise((resolve) => openConfirm({ ...options, resolve }));
}

export function ConfirmHost() {
  const [pending, setPending] = useState(null);
  const dialog = useRef(null);
  const cancelButton = useRef(null);
  const opener = useRef(null);
  useEffect(() => {
    openConfirm = (p) => {
      opener.current = document.activeElement;
      setPending(p);
    };
    return () => {
      openConfirm = null;
    };
  }, []);
  useLayoutEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (pending && !d.open) {
      d.showModal();
      // Focus into the dialog, on the choice that changes nothing.
      if (cancelButton.current) cancelButton.current.focus();
    } else if (!pending && d.open) {
      d.close();
    }
  }, [pending]);
  const finish = (answer) => {
    if (!pending) return;
    const { resolve } = pending;
    setPending(null);
    const back = opener.current;
    opener.current = null;
    resolve(answer);
    if (back && typeof back.focus === 'function' && document.contains(back)) back.focus();
  };
  return (
    <dialog
      ref={dialog}
      class="confirm"
      aria-labelledby="confirm-title"
      aria-describedby="confirm-body"
      onCancel={(e) => {
        e.preventDefault();
        finish(false);
      }}
    >
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          finish(true);
        }}
      >
        <h2 id="confirm-title">{pending ? pending.title : 'Confirm'}</h2>
        <p id="confirm-body">{pending ? pending.message : ''}</p>
        <div class="actions">
          <button type="button" ref={cancelButton} onClick={() => finish(false)}>
            Cancel
          </button>
          <button type="submit" class={pending && pending.danger ? 'danger' : 'primary'}>
            {pending ? pending.confirmLabel || 'Confirm' : 'Confirm'}
          </button>
        </div>
      </form>
    </dialog>
  );
}

// ---- charts ----

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/**
 * A time-series line chart (uPlot) with an accessible name, a legend and a
 * text summary. `x` is unix seconds; `series` is [{label, values}]. The
 * canvas is hidden from assistive technology behind role="img".
 */
export function TimeChart({ id, title, x, series, summary, summaryData, unit, span = 3600, step = 60 }) {
  const holder = useRef(null);
  const plot = useRef(null);
  // The x axis always spans the whole period, ending with the current step.
  const window = useRef({ span, step });
  window.current = { span, step };
  const shape = series.map((s) => s.label).join('|');
  useEffect(() => {
    const el = holder.current;
    if (!el) return undefined;
    const axis = cssVar('--text-muted', '#555');
    const grid = cssVar('--grid', '#e5e7eb');
    const width = Math.max(200, Math.floor(el.clientWidth || 300));
    const opts = {
      width,
      height: 170,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: {
        x: {
          time: true,
          range: (u, min, max) => {
            const { span: s, step: st } = window.current;
            const end = (max ?? Date.now() / 1000) + st;
            return [end - s, end];
          },
        },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          values: (u, splits) =>
            splits.map((v) => {
              const d = new Date(v * 1000);
              return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
            }),
        },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 48 },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: cssVar(`--chart-${i + 1}`, '#1d4ed8'),
          width: 2,
          spanGaps: false,
          // Few values (p50 and p99 exist only for minutes with requests):
          // show them as dots, or a lone minute would draw nothing.
          points: { show: (u, si) => u.data[si].filter((v) => v != null).length <= 20, size: 5 },
        })),
      ],
    };
    const u = new uPlot(opts, [x, ...series.map((s) => s.values)], el);
    plot.current = u;
    let lastWidth = width;
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        const w = Math.max(200, Math.floor(el.clientWidth));
        if (w !== lastWidth) {
          lastWidth = w;
          u.setSize({ width: w, height: 170 });
        }
      });
    });
    observer.observe(el);
    return () => {
      cancelAnimationFrame(frame);
      observer.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series change shape.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);
  useEffect(() => {
    if (plot.current) plot.current.setData([x, ...series.map((s) => s.values)]);
  });
  return (
    <figure class="chart" id={id} data-chart={id}>
      <figcaption id={`${id}-title`}>
        {title}
        {unit ? <span class="unit"> ({unit})</span> : null}
      </figcaption>
      <div class="chart-canvas" ref={holder} role="img" aria-labelledby={`${id}-title`} aria-describedby={`${id}-summary`} />
      <ul class="legend">
        {series.map((s, i) => (
          <li key={s.label}>
            <span class={`swatch swatch-${i + 1}`} aria-hidden="true" />
            {s.label}
          </li>
        ))}
      </ul>
      <p class="chart-summary" id={`${id}-summary`} {...(summaryData || {})}>
        {summary}
      </p>
    </figure>
  );
}

// ---- the function picker ----

/** Live functions, as `app/name` options. */
export function useFunctions() {
  return useApi((signal) => get(v1('/functions'), { signal }), []);
}

export function FunctionSelect({ id, value, onChange, functions, filter, label = 'Function' }) {
  const list = (functions || []).filter((f) => !filter || filter(f));
  const values = list.map((f) => `${localApp(f.app)}/${f.name}`);
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">Choose a function…</option>
        {value && !values.includes(value) ? <option value={value}>{value}</option> : null}
        {values.map((v) => (
          <option key={v} value={v}>
            {v}
          </option>
        ))}
      </select>
    </div>
  );
}

/** The page's heading; focused (for screen readers) when the route changes. */
export function PageTitle({ children }) {
  return (
    <h1 tabIndex={-1} class="page-title">
      {children}
    </h1>
  );
}
