// The Stratus console: sign-in, the header and navigation, and the hash
// router over the pages.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  get,
  getStoredNamespace,
  getToken,
  isAbort,
  onUnauthorized,
  setNamespace,
  setStoredNamespace,
  setToken,
} from './api.js';
import { ConfirmHost } from './components.jsx';
import { parseHash } from './util.js';
import { AppPage, AppsPage } from './pages/apps.jsx';
import { FunctionPage, FunctionsPage } from './pages/functions.jsx';
import { InvocationPage, InvocationsPage } from './pages/invocations.jsx';
import { LogsPage } from './pages/logs.jsx';
import { UsagePage } from './pages/usage.jsx';
import { EventsPage } from './pages/events.jsx';
import { HealthPage } from './pages/health.jsx';

const NAV = [
  ['apps', 'Apps'],
  ['functions', 'Functions'],
  ['invocations', 'Invocations'],
  ['logs', 'Logs'],
  ['usage', 'Usage'],
  ['events', 'Events'],
  ['health', 'Health'],
];

function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return parseHash(hash);
}

/** The page for a route, and its title. */
function pageFor({ parts, query }) {
  const [section, ...rest] = parts;
  switch (section || 'apps') {
    case 'apps':
      return rest.length
        ? { title: `App ${rest[0]}`, node: <AppPage app={rest[0]} query={query} /> }
        : { title: 'Apps', node: <AppsPage /> };
    case 'functions':
      return rest.length >= 2
        ? { title: `Function ${rest[0]}/${rest[1]}`, node: <FunctionPage app={rest[0]} name={rest[1]} /> }
        : { title: 'Functions', node: <FunctionsPage /> };
    case 'invocations':
      return rest.length
        ? { title: `Invocation ${rest[0]}`, node: <InvocationPage id={rest[0]} /> }
        : { title: 'Invocations', node: <InvocationsPage query={query} /> };
    case 'logs':
      return { title: 'Logs', node: <LogsPage query={query} /> };
    case 'usage':
      return { title: 'Usage', node: <UsagePage query={query} /> };
    case 'events':
      return { title: 'Events', node: <EventsPage query={query} /> };
    case 'health':
      return { title: 'Health', node: <HealthPage /> };
    default:
      return {
        title: 'Not found',
        node: (
          <section>
            <h1 tabIndex={-1} class="page-title">
              Not found
            </h1>
            <p>
              There is no page here. <a href="#/apps">Go to the apps</a>.
            </p>
          </section>
        ),
      };
  }
}

function SignIn({ reason, onSignedIn }) {
  const [token, setTokenText] = useState('');
  const [error, setError] = useState(reason || '');
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => {
    document.title = 'Sign in · Stratus console';
    if (input.current) input.current.focus();
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) {
      setError('Enter an admin API token.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      const who = await get('/v1/whoami', { token: t, noSignOut: true });
      setToken(t);
      onSignedIn(who);
    } catch (err) {
      setError(err && err.message ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <div class="signin-page">
      <main id="main" class="signin" tabIndex={-1}>
        <h1>Stratus console</h1>
        <p>Sign in with an admin API token of this node. It is kept in this browser tab only.</p>
        <form onSubmit={submit} class="signin-form" aria-describedby="signin-error">
          <div class="field">
            <label for="token">Admin token</label>
            <input
              id="token"
              ref={input}
              type="password"
              autocomplete="off"
              spellcheck={false}
              value={token}
              onInput={(e) => setTokenText(e.currentTarget.value)}
            />
          </div>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
          <div aria-live="polite" id="signin-error" class="messages">
            {error ? <p class="notice notice-error">{error}</p> : null}
          </div>
        </form>
      </main>
    </div>
  );
}

function Header({ who, namespaces, ns, onNamespace, onSignOut, route }) {
  const [open, setOpen] = useState(false);
  const current = route.parts[0] || 'apps';
  useEffect(() => setOpen(false), [route.parts.join('/')]);
  return (
    <header class="topbar">
      <div class="brand-row">
        <a class="brand" href="#/apps">
          Stratus
        </a>
        <button
          type="button"
          class="menu-button"
          aria-expanded={open ? 'true' : 'false'}
          aria-controls="main-nav"
          onClick={() => setOpen(!open)}
        >
          Menu
        </button>
      </div>
      <nav aria-label="Main" id="main-nav" class={open ? 'open' : ''}>
        <ul>
          {NAV.map(([key, label]) => (
            <li key={key}>
              <a href={`#/${key}`} aria-current={current === key ? 'page' : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="session">
        <span class="who" id="who">
          {who.name} <span class="role">({who.role})</span>
        </span>
        {who.namespace ? (
          <span class="ns" id="namespace">
            Namespace: <strong>{who.namespace}</strong>
          </span>
        ) : (
          <span class="ns field-inline">
            <label for="namespace-select">Namespace</label>
            <select id="namespace-select" value={ns} onChange={(e) => onNamespace(e.currentTarget.value)}>
              {(namespaces.length ? namespaces : [{ name: 'default' }]).map((n) => (
                <option key={n.name} value={n.name}>
                  {n.name}
                </option>
              ))}
              {namespaces.length && !namespaces.some((n) => n.name === ns) ? <option value={ns}>{ns}</option> : null}
            </select>
          </span>
        )}
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function Console({ who, onSignOut }) {
  const route = useRoute();
  const [namespaces, setNamespaces] = useState([]);
  const [ns, setNs] = useState(() => who.namespace || getStoredNamespace() || 'default');
  setNamespace(ns);
  useEffect(() => {
    if (who.namespace) return undefined;
    const controller = new AbortController();
    get('/v1/namespaces', { signal: controller.signal })
      .then((list) => setNamespaces(Array.isArray(list) ? list : []))
      .catch((e) => {
        if (!isAbort(e)) setNamespaces([]);
      });
    return () => controller.abort();
  }, [who.namespace]);
  const page = pageFor(route);
  const path = route.parts.join('/');
  const first = useRef(true);
  useEffect(() => {
    document.title = `${page.title} · Stratus console`;
  }, [page.title]);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    // A new page: move focus to its heading, as a page load would.
    const h = document.querySelector('main h1');
    if (h) h.focus({ preventScroll: false });
  }, [path, ns]);
  const skip = (e) => {
    e.preventDefault();
    const main = document.getElementById('main');
    if (main) main.focus();
  };
  return (
    <div class="shell">
      <a class="skip-link" href="#main" onClick={skip}>
        Skip to content
      </a>
      <Header
        who={who}
        namespaces={namespaces}
        ns={ns}
        route={route}
        onSignOut={onSignOut}
        onNamespace={(value) => {
          setStoredNamespace(value);
          setNamespace(value);
          setNs(value);
        }}
      />
      <main id="main" tabIndex={-1} key={ns}>
        {page.node}
      </main>
      <ConfirmHost />
    </div>
  );
}

function Root() {
  const [who, setWho] = useState(null);
  const [checking, setChecking] = useState(() => !!getToken());
  const [reason, setReason] = useState('');
  useEffect(() => {
    onUnauthorized((message) => {
      setToken('');
      setWho(null);
      setReason(message ? `Signed out: ${message}` : 'Signed out: the token was refused.');
    });
    if (!getToken()) return;
    get('/v1/whoami', { noSignOut: true })
      .then((w) => {
        setWho(w);
        setChecking(false);
      })
      .catch((e) => {
        if (e && e.status === 401) {
          setToken('');
          setReason(`Signed out: ${e.message}`);
        } else {
          setReason(e && e.message ? e.message : String(e));
        }
        setChecking(false);
      });
  }, []);
  if (checking) {
    return (
      <main id="main" class="signin" aria-busy="true">
        <h1>Stratus console</h1>
        <p>Checking your session…</p>
      </main>
    );
  }
  if (!who) {
    return (
      <SignIn
        reason={reason}
        onSignedIn={(w) => {
          setReason('');
          setWho(w);
        }}
      />
    );
  }
  return (
    <Console
      who={who}
      onSignOut={() => {
        setToken('');
        setStoredNamespace('');
        setWho(null);
        setReason('');
      }}
    />
  );
}

window.addEventListener('unhandledrejection', (e) => {
  // Aborted requests of pages that went away are expected.
  if (isAbort(e.reason)) e.preventDefault();
});

render(<Root />, document.getElementById('app'));
