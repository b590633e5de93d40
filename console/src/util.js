// Formatting, the version diff, CSV and the hash route.

export function fmtTime(value) {
  if (value === null || value === undefined || value === '') return '—';
  const d = typeof value === 'number' ? new Date(value) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAgo(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return '—';
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  const v = Number(ms);
  if (v >= 10000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 100) return `${Math.round(v)} ms`;
  return `${v.toFixed(v < 10 ? 2 : 1)} ms`;
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '—';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtMoney(amount, currency) {
  if (amount === null || amount === undefined) return '—';
  const v = Number(amount);
  const text = v === 0 ? '0' : Math.abs(v) >= 0.01 ? v.toFixed(4) : Math.abs(v) >= 1e-6 ? v.toFixed(8) : v.toExponential(3);
  return `${text} ${currency || ''}`.trim();
}

/** `n thing(s)`. */
export function plural(n, one, many = `${one}s`) {
  return `${fmtNum(n)} ${Number(n) === 1 ? one : many}`;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return '—';
  const v = Number(s);
  if (v < 60) return `${Math.round(v)} s`;
  if (v < 3600) return `${Math.round(v / 60)} min`;
  if (v < 86400) return `${(v / 3600).toFixed(1)} h`;
  return `${(v / 86400).toFixed(1)} d`;
}

/** A trigger as shown: a string stays, an object becomes `key value, …`. */
export function triggerText(t) {
  if (t === null || t === undefined) return '';
  if (typeof t === 'string') return t;
  if (typeof t.trigger === 'string') return t.trigger;
  const kind = typeof t.kind === 'string' ? t.kind : null;
  const entries = Object.entries(t).filter(([k]) => k !== 'kind');
  // `queue "jobs", max_attempts 1`: the trigger's own key first.
  entries.sort(([a], [b]) => (a === kind ? -1 : b === kind ? 1 : 0));
  const text = entries.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ');
  return kind && !Object.prototype.hasOwnProperty.call(t, kind) ? `${kind}: ${text}` : text;
}

// ---- the diff of two versions' function specs ----

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The differences between two versions' functions (lists of FunctionInfo
 * with `spec`): functions added and removed, and per function kept, the
 * spec keys added, removed and changed (component digest included).
 */
export function diffVersions(fromFns, toFns) {
  const byName = (fns) => new Map((fns || []).map((f) => [f.name, f]));
  const a = byName(fromFns);
  const b = byName(toFns);
  const added = [...b.keys()].filter((n) => !a.has(n)).sort();
  const removed = [...a.keys()].filter((n) => !b.has(n)).sort();
  const changed = [];
  for (const name of [...a.keys()].filter((n) => b.has(n)).sort()) {
    const fa = a.get(name);
    const fb = b.get(name);
    const sa = { ...(fa.spec || {}), component_sha256: fa.component_sha256 };
    const sb = { ...(fb.spec || {}), component_sha256: fb.component_sha256 };
    const keys = [...new Set([...Object.keys(sa), ...Object.keys(sb)])].sort();
    const changes = [];
    for (const key of keys) {
      const inA = Object.prototype.hasOwnProperty.call(sa, key);
      const inB = Object.prototype.hasOwnProperty.call(sb, key);
      if (inA && !inB) changes.push({ key, kind: 'removed', from: sa[key] });
      else if (!inA && inB) changes.push({ key, kind: 'added', to: sb[key] });
      else if (!same(sa[key], sb[key])) changes.push({ key, kind: 'changed', from: sa[key], to: sb[key] });
    }
    if (changes.length) changed.push({ name, changes });
  }
  return { added, removed, changed, identical: !added.length && !removed.length && !changed.length };
}

export function jsonText(v) {
  if (v === undefined) return '';
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
}

// ---- CSV ----

export function csvField(v) {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(header, rows) {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

export function download(filename, text, type = 'text/csv;charset=utf-8') {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- the hash route: #/path/segments?query ----

export function parseHash(hash) {
  const h = (hash || '').replace(/^#/, '');
  const [path, query = ''] = h.split('?');
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { parts, query: new URLSearchParams(query) };
}

/** `#/a/b?k=v` from segments and a query object (empty values dropped). */
export function href(parts, query) {
  const path = parts.map((p) => encodeURIComponent(p)).join('/');
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const qs = q.toString();
  return `#/${path}${qs ? `?${qs}` : ''}`;
}

export function navigate(to, replace = false) {
  if (replace) {
    history.replaceState(null, '', to);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = to;
  }
}
