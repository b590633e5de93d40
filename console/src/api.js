// The admin API, same-origin: a bearer token from sessionStorage, the
// platform's error shape turned into ApiError, a 401 anywhere signs out.

const TOKEN_KEY = 'stratus.token';
const NS_KEY = 'stratus.namespace';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = () => {};
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export function getToken() {
  return storage()?.getItem(TOKEN_KEY) || '';
}
export function setToken(token) {
  const s = storage();
  if (!s) return;
  if (token) s.setItem(TOKEN_KEY, token);
  else s.removeItem(TOKEN_KEY);
}
export function getStoredNamespace() {
  return storage()?.getItem(NS_KEY) || '';
}
export function setStoredNamespace(ns) {
  const s = storage();
  if (!s) return;
  if (ns) s.setItem(NS_KEY, ns);
  else s.removeItem(NS_KEY);
}

// The namespace requests are made in; '' or 'default' is /v1 itself.
let namespace = 'default';
export function setNamespace(ns) {
  namespace = ns || 'default';
}
export function currentNamespace() {
  return namespace;
}

/** `/v1/…` in the current namespace. */
export function v1(path) {
  return namespace === 'default' ? `/v1${path}` : `/v1/namespaces/${encodeURIComponent(namespace)}${path}`;
}

/** An app's name within the current namespace (AppSummary.name is
 * `<namespace>/<name>` outside `default`). */
export function localApp(app) {
  const prefix = `${namespace}/`;
  return namespace !== 'default' && app && app.startsWith(prefix) ? app.slice(prefix.length) : app;
}

/** `APP/NAME` of a function, as a single URL path segment. */
export function fnSegment(app, name) {
  return encodeURIComponent(`${localApp(app)}/${name}`);
}

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText || 'error'}`;
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error && body.error.message) {
        code = body.error.code || code;
        message = body.error.message;
      }
    } catch {
      if (text && text.length < 300) message = `${message}: ${text}`;
    }
  } catch {
    // The body could not be read: keep the status line.
  }
  return new ApiError(response.status, code, message);
}

/**
 * A request to the node. `opts.token` overrides the stored token (sign-in),
 * `opts.raw` returns the Response itself, `opts.noSignOut` keeps a 401 from
 * signing out (the sign-in form shows it).
 */
export async function request(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  const token = opts.token ?? getToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  if (opts.json !== undefined) headers.set('Content-Type', 'application/json');
  let response;
  try {
    response = await fetch(path, {
      method: opts.method || 'GET',
      headers,
      body: opts.json !== undefined ? JSON.stringify(opts.json) : opts.body,
      signal: opts.signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `The node could not be reached: ${e && e.message ? e.message : e}`);
  }
  if (!response.ok && !(opts.accept && opts.accept.includes(response.status))) {
    const error = await errorFrom(response);
    if (response.status === 401 && !opts.noSignOut) unauthorizedHandler(error.message);
    throw error;
  }
  if (opts.raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, 'bad_json', `The node answered ${path} with something that is not JSON`);
  }
}

export const get = (path, opts) => request(path, opts);
export const post = (path, opts = {}) => request(path, { ...opts, method: 'POST' });
export const put = (path, opts = {}) => request(path, { ...opts, method: 'PUT' });

export function isAbort(e) {
  return e && (e.name === 'AbortError' || e.code === 20);
}

/**
 * Follows a server-sent event stream read with fetch (EventSource cannot send
 * the Authorization header). Calls onData(parsed JSON) for each event's data,
 * onComment(text) for comments. Resolves when the stream ends; rejects with an
 * AbortError when `signal` aborts.
 */
export async function followSse(path, { signal, onData, onComment }) {
  const response = await request(path, { raw: true, signal, headers: { Accept: 'text/event-stream' } });
  if (!response.body) throw new ApiError(0, 'no_stream', 'The browser cannot read a streamed answer');
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const flush = (block) => {
    const data = [];
    for (const rawLine of block.split('\n')) {
      const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
      if (line.startsWith(':')) {
        if (onComment) onComment(line.slice(1).trim());
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).startsWith(' ') ? line.slice(6) : line.slice(5));
      }
    }
    if (data.length) {
      const text = data.join('\n');
      try {
        onData(JSON.parse(text));
      } catch {
        onData({ text });
      }
    }
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
      let at;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        flush(buffer.slice(0, at));
        buffer = buffer.slice(at + 2);
      }
    }
    if (buffer.trim()) flush(buffer);
  } finally {
    try {
      reader.releaseLock();
    } catch {
      // Already released.
    }
  }
}
