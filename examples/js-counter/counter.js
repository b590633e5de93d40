// js-counter: a Stratus function in JavaScript that counts visits with the
// key-value store's atomic increment and greets with a configuration value.
//
//   POST /js/count/<name>   adds one to <name>'s count: {"name": ..., "count": n}
//   GET  /js/count/<name>   the count without changing it
//   GET  /js/hello          the `greeting` config value
//
// Built with `jco componentize` against wit/world.wit, which imports
// wasi:keyvalue/store and /atomics and wasi:config/store and exports
// wasi:http/incoming-handler (served through the `fetch` event); the manifest
// grants bucket "default" and sets `greeting`. Errors are
// {"error": {"code": ..., "message": ...}}.

import { open } from 'wasi:keyvalue/store@0.2.0-draft';
import { increment } from 'wasi:keyvalue/atomics@0.2.0-draft';
import { get as configGet } from 'wasi:config/store@0.2.0-draft';

const BUCKET = 'default';
const PREFIX = '/js/count/';
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

class HttpError extends Error {
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  try {
    return route(request);
  } catch (e) {
    if (e instanceof HttpError) {
      return json(e.status, { error: { code: e.code, message: e.message } }, e.headers);
    }
    return json(500, { error: { code: 'internal', message: String(e) } });
  }
}

function route(request) {
  const path = new URL(request.url).pathname;
  if (path === '/js/hello') {
    allow(request, ['GET']);
    return new Response(`${greeting()}\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  }
  if (path.startsWith(PREFIX)) {
    const name = decodeURIComponent(path.slice(PREFIX.length));
    if (!NAME.test(name)) {
      throw new HttpError(400, 'invalid_name',
        `a counter name is 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-', not ${JSON.stringify(name)}`);
    }
    allow(request, ['GET', 'POST']);
    // An increment by 0 reads the count atomically (0 when it was never set).
    const delta = request.method === 'POST' ? 1n : 0n;
    const bucket = keyvalue(() => open(BUCKET));
    const count = keyvalue(() => increment(bucket, `count:${name}`, delta));
    return json(200, { name, count: Number(count) });
  }
  throw new HttpError(404, 'not_found', `no route for ${path}; try /js/hello or /js/count/<name>`);
}

function allow(request, methods) {
  if (!methods.includes(request.method)) {
    throw new HttpError(405, 'method_not_allowed', `use ${methods.join(' or ')}`,
      { allow: methods.join(', ') });
  }
}

function greeting() {
  let value;
  try {
    value = configGet('greeting');
  } catch (e) {
    throw new HttpError(500, 'config_error', `cannot read config value greeting: ${describe(e)}`);
  }
  if (value === undefined) {
    throw new HttpError(500, 'missing_config',
      'config value greeting is not set; add config = { greeting = "..." }');
  }
  return value;
}

// Runs a key-value call; a host error becomes a 500 that says which.
function keyvalue(operation) {
  try {
    return operation();
  } catch (e) {
    const tag = e?.payload?.tag;
    const detail = tag === 'access-denied'
      ? `bucket "${BUCKET}" is not granted; add keyvalue = ["${BUCKET}"]`
      : tag === 'no-such-store' ? `there is no bucket "${BUCKET}"` : describe(e);
    throw new HttpError(500, 'keyvalue_error', `key-value: ${detail}`);
  }
}

function describe(e) {
  const payload = e?.payload;
  if (payload && typeof payload === 'object') {
    return payload.val !== undefined ? `${payload.tag}: ${payload.val}` : String(payload.tag);
  }
  return String(e);
}

function json(status, value, headers = {}) {
  return new Response(JSON.stringify(value), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}
