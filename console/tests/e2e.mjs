// End-to-end test of the console against a running node, in a real Chromium.
//
//   STRATUS_ADMIN_URL     the node's admin API, which serves the console at /ui
//                         (e.g. http://127.0.0.1:18081)
//   STRATUS_GATEWAY_URL   the node's gateway (e.g. http://127.0.0.1:18080)
//   STRATUS_TOKEN         the node's admin token
//   STRATUS_TESTBED_WASM  tests/guests/…/testbed.wasm
//   STRATUS_OUT           where screenshots go (created)
//   STRATUS_CHROMIUM      optional; default /usr/bin/chromium
//
// Exits 0 when every step passed; otherwise prints what failed, saves
// failure.png in STRATUS_OUT and exits 1. Every wait is on a condition with a
// timeout, never a fixed sleep.
import { createRequire } from 'node:module';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(resolve(here, '../package.json'));
const { chromium } = require('playwright-core');

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`e2e: ${name} must be set (see the header of ${fileURLToPath(import.meta.url)})`);
    process.exit(2);
  }
  return v;
}

const ADMIN = env('STRATUS_ADMIN_URL').replace(/\/+$/, '');
const GATEWAY = env('STRATUS_GATEWAY_URL').replace(/\/+$/, '');
const TOKEN = env('STRATUS_TOKEN');
const WASM = env('STRATUS_TESTBED_WASM');
const OUT = resolve(env('STRATUS_OUT'));
const CHROMIUM = process.env.STRATUS_CHROMIUM || '/usr/bin/chromium';
const APP = 'storefront';
const WAIT = 30_000;

const axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
const wasm = await readFile(WASM);
await mkdir(OUT, { recursive: true });

// ---- the API, from this process ----

async function api(path, { method = 'GET', body, headers = {}, expect } = {}) {
  const response = await fetch(`${ADMIN}${path}`, {
    method,
    body,
    headers: { Authorization: `Bearer ${TOKEN}`, ...headers },
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: reported below if the status is wrong.
  }
  const ok = expect ? expect.includes(response.status) : response.ok;
  if (!ok) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`);
  return json;
}

function manifest(version) {
  // Version 2 changes the web function's memory and an env value.
  return `[app]
name = "${APP}"

[[function]]
name = "web"
component = "testbed.wasm"
routes = ["/${APP}/..."]
memory = "${version === 1 ? '64MiB' : '96MiB'}"
env = { RELEASE = "v${version}" }

[[function]]
name = "worker"
component = "testbed.wasm"
triggers = [{ queue = "jobs", max_attempts = 1 }]
`;
}

/** Deploys `version`'s manifest; `query` (e.g. `?canary=50`) is appended. */
async function deploy(version, query = '') {
  const form = new FormData();
  form.append('manifest', manifest(version));
  form.append('component', new Blob([wasm], { type: 'application/wasm' }), 'testbed.wasm');
  return api(`/v1/apps${query}`, { method: 'POST', body: form, expect: [201] });
}

/** `count` GETs of `path` on the gateway, `concurrency` at a time. */
async function load(path, count, concurrency) {
  let next = 0;
  const statuses = {};
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        const r = await fetch(`${GATEWAY}${path}`);
        await r.arrayBuffer();
        statuses[r.status] = (statuses[r.status] || 0) + 1;
      } catch (e) {
        statuses[`failed: ${e.message}`] = (statuses[`failed: ${e.message}`] || 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

// ---- the browser ----

const consoleErrors = [];
// Errors expected while a step runs on purpose (the wrong token's 401).
let expectedErrors = [];
let step = 'starting';

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
const page = await context.newPage();
page.setDefaultTimeout(WAIT);
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  const text = m.text();
  if (expectedErrors.some((re) => re.test(text))) return;
  consoleErrors.push(`[${step}] console.error: ${text} (${m.location().url || ''})`);
});
page.on('pageerror', (e) => consoleErrors.push(`[${step}] pageerror: ${e.message}`));

const ui = (hash = '') => `${ADMIN}/ui/${hash}`;

async function go(hash) {
  await page.goto(ui(hash));
  await page.locator('main h1').first().waitFor();
}

/** Waits until `selector`'s text matches `re`. */
async function waitText(selector, re, timeout = WAIT) {
  await page.waitForFunction(
    ([sel, source, flags]) => {
      const el = document.querySelector(sel);
      return !!el && new RegExp(source, flags).test(el.textContent || '');
    },
    [selector, re.source, re.flags],
    { timeout },
  );
}

async function axeCheck(name) {
  // The page's CSP (script-src 'self') refuses an injected <script>, so
  // axe's source is evaluated through the DevTools protocol, which CSP does
  // not govern; the page keeps its real CSP for the rest of the run.
  const loaded = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!loaded) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) {
    const lines = bad.map(
      (v) => `  ${v.id} (${v.impact}): ${v.help}\n${v.nodes
        .slice(0, 5)
        .map((n) => `    ${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`)
        .join('\n')}`,
    );
    throw new Error(`axe found serious or critical violations on ${name}:\n${lines.join('\n')}`);
  }
  const minor = result.violations.length - bad.length;
  return minor;
}

async function shot(name) {
  await page.screenshot({ path: resolve(OUT, `${name}.png`), fullPage: true });
}

const results = [];
async function run(name, fn) {
  step = name;
  const started = Date.now();
  const outcome = await fn();
  const mark = outcome === 'skipped' ? 'SKIP' : 'ok  ';
  results.push(`${mark} ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  console.log(`${mark} ${name}`);
}

let v1 = 0;
let v2 = 0;
let v3 = 0;
let failedInvocation = '';
let deadEvent = '';

try {
  await run('1. sign in: a wrong token is refused, the right one admitted', async () => {
    // /ui itself (the node redirects it to /ui/).
    await page.goto(`${ADMIN}/ui`);
    await page.getByLabel('Admin token').waitFor();
    expectedErrors = [/status of 401/];
    await page.getByLabel('Admin token').fill(`not-${TOKEN}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#signin-error .notice-error').waitFor();
    const message = (await page.locator('#signin-error').textContent()).trim();
    if (!message) throw new Error('the sign-in form showed no reason for the refused token');
    console.log(`    refused with: ${message}`);
    expectedErrors = [];
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('nav[aria-label="Main"]').waitFor();
    await page.locator('#who').waitFor();
  });

  await run('2. deploy storefront twice through the API; Apps shows live version 2', async () => {
    await go('#/apps');
    const first = await deploy(1);
    const second = await deploy(2);
    v1 = first.version;
    v2 = second.version;
    if (v2 !== v1 + 1) throw new Error(`deploys made versions ${v1} and ${v2}, not consecutive`);
    // The Apps page polls: no reload needed.
    await waitText(`#apps-table tr[data-app="${APP}"] .live-version`, new RegExp(`^\\s*${v2}\\s*$`));
  });

  await run('3. a chart moves under load', async () => {
    await go(`#/functions/${APP}/web`);
    const summary = page.locator('#chart-requests-summary');
    await summary.waitFor();
    await page.locator('#chart-requests .chart-canvas canvas').first().waitFor();
    const label = await page.locator('#chart-requests .chart-canvas').getAttribute('aria-labelledby');
    if (!label) throw new Error('the requests chart has no accessible name');
    const before = Number(await summary.getAttribute('data-total'));
    console.log(`    before: ${(await summary.textContent()).trim()}`);
    // 300 requests that each take 100 ms, 3 at a time: about 10 s of load.
    const loading = load(`/${APP}/sleep?ms=100`, 300, 3);
    await page.waitForFunction(
      (b) => Number(document.querySelector('#chart-requests-summary')?.getAttribute('data-total')) > b,
      before,
      { timeout: 60_000 },
    );
    console.log(`    during: ${(await summary.textContent()).trim()}`);
    const statuses = await loading;
    if (Object.keys(statuses).some((s) => s !== '200')) throw new Error(`the load got answers other than 200: ${JSON.stringify(statuses)}`);
  });

  await run('4. a failed invocation: filtered to errors, its log and status', async () => {
    const r = await fetch(`${GATEWAY}/${APP}/panic`);
    await r.arrayBuffer();
    if (r.status < 500) throw new Error(`/${APP}/panic answered ${r.status}, not 5xx`);
    failedInvocation = r.headers.get('x-stratus-invocation-id') || '';
    console.log(`    /${APP}/panic answered ${r.status}, invocation ${failedInvocation || '(no id header)'}`);
    await go(`#/invocations?fn=${encodeURIComponent(`${APP}/web`)}&status=error`);
    const row = failedInvocation
      ? page.locator(`#invocations-table tr[data-invocation="${failedInvocation}"]`)
      : page.locator('#invocations-table tbody tr').first();
    // The ledger writes records in batches: the page polls until it is there.
    await row.waitFor({ timeout: 60_000 });
    const statuses = await page.locator('#invocations-table tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.dataset.status)));
    if (statuses.some((s) => s < 400)) throw new Error(`the error filter listed statuses ${statuses.join(', ')}`);
    await row.getByRole('link').click();
    await page.locator('#invocation-status').waitFor();
    const status = Number(await page.locator('#invocation-status').getAttribute('data-status'));
    if (!(status >= 500)) throw new Error(`the invocation page shows status ${status}`);
    await waitText('#invocation-logs', /testbed panic requested/);
    await page.locator('#cost-receipt').waitFor();
    await waitText('#cost-receipt', /GB-seconds/);
  });

  await run('5. a refused event becomes a dead letter; redrive it', async () => {
    await go(`#/events?fn=${encodeURIComponent(`${APP}/worker`)}`);
    const published = await api(`/v1/apps/${APP}/queues/jobs/events`, {
      method: 'POST',
      body: 'fail: the e2e test refuses this event',
      headers: { 'Content-Type': 'text/plain' },
      expect: [202],
    });
    deadEvent = published.id;
    console.log(`    published ${deadEvent} to ${published.consumers.join(', ')}`);
    const row = page.locator(`#dead-letters-table tr[data-event="${deadEvent}"]`);
    await row.waitFor({ timeout: 60_000 });
    await waitText('#queues-table', /jobs/);
    await row.getByRole('button', { name: /^Redrive/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const focusInside = await page.evaluate(() => !!document.activeElement?.closest('dialog[open]'));
    if (!focusInside) throw new Error('focus did not move into the confirmation dialog');
    await dialog.getByRole('button', { name: 'Redrive', exact: true }).click();
    await waitText('#events-status', /Redriven 1\b/);
    await dialog.waitFor({ state: 'hidden' });
  });

  await run('5b. replay an event from the timeline', async () => {
    const row = page.locator(`#events-table tr[data-event="${deadEvent}"]`);
    await row.waitFor();
    await row.getByRole('button', { name: /^Replay/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Replay', exact: true }).click();
    await waitText('#events-status', /Replayed event \S+ as \S+/);
    // The copy is in the timeline too, under its new id.
    const copy = (await page.locator('#events-status').textContent()).match(/ as (\S+)/)[1];
    await page.locator(`#events-table tr[data-event="${copy}"]`).waitFor({ timeout: 15000 });
  });

  await run('6. roll back with confirmation (Escape cancels first)', async () => {
    await go(`#/apps/${APP}`);
    await waitText('#live-version', new RegExp(`^\\s*${v2}\\s*$`));
    await waitText('#version-diff', /memory/);
    const button = page.locator('main').getByRole('button', { name: 'Roll back' });
    await button.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const focusInside = await page.evaluate(() => !!document.activeElement?.closest('dialog[open]'));
    if (!focusInside) throw new Error('focus did not move into the confirmation dialog');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    const still = (await page.locator('#live-version').textContent()).trim();
    if (still !== String(v2)) throw new Error(`Escape did not cancel: live version is ${still}`);
    await button.click();
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await waitText('#live-version', new RegExp(`^\\s*${v1}\\s*$`));
    await waitText('#app-status', new RegExp(`live at version ${v1}`));
  });

  await run('7. a canary: deployed at 50 %, shown, stopped with confirmation (Escape cancels first)', async () => {
    const third = await deploy(3, '?canary=50');
    v3 = third.version;
    if (third.canary_percent !== 50) throw new Error(`the canary deploy answered canary_percent ${third.canary_percent}`);
    // The Apps list polls: the canary shows without a reload.
    await go('#/apps');
    await waitText(`#apps-table tr[data-app="${APP}"] .canary`, new RegExp(`^\\s*v${v3} · 50%\\s*$`));
    await waitText(`#apps-table tr[data-app="${APP}"] .live-version`, new RegExp(`^\\s*${v1}\\s*$`));
    await go(`#/apps/${APP}`);
    await page.locator('#traffic-title').waitFor();
    await waitText('#traffic-canary', new RegExp(`version ${v3} · 50%`));
    await waitText('#traffic-live', new RegExp(`^\\s*${v1}\\s*$`));
    await page.locator('#traffic-window').waitFor();
    await waitText('#history-table tbody tr:first-child', /started/);
    await waitText(`#versions-table tr[data-version="${v3}"]`, /Canary 50%/);
    // The app page with a canary running: axe, a screenshot, and at phone
    // size no horizontal overflow.
    await shot('app-canary');
    const minor = await axeCheck('app-canary');
    console.log(`    app-canary: ${OUT}/app-canary.png, axe clean${minor ? ` (${minor} minor/moderate)` : ''}`);
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('phone-app-canary');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    await page.setViewportSize({ width: 1280, height: 900 });
    if (width > 390) throw new Error(`phone-app-canary: the page is ${width} px wide at a 390 px viewport`);

    const ended = () => page.locator('#history-table tr[data-action="ended"]').count();
    const endedBefore = await ended();
    const button = page.locator('main').getByRole('button', { name: 'Stop canary' });
    await button.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const focusInside = await page.evaluate(() => !!document.activeElement?.closest('dialog[open]'));
    if (!focusInside) throw new Error('focus did not move into the confirmation dialog');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    const still = (await page.locator('#traffic-canary').textContent()).trim();
    if (!still.includes(`version ${v3} · 50%`)) throw new Error(`Escape did not cancel: the canary shows "${still}"`);
    const report = await api(`/v1/apps/${APP}/traffic`);
    if (!report.canary || report.canary.version !== v3) throw new Error(`Escape did not cancel: the node reports ${JSON.stringify(report.canary)}`);
    await button.click();
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Stop canary' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await waitText('#app-status', new RegExp(`serves version ${v1} alone`));
    await waitText('#traffic-canary', /^\s*none/);
    await page.waitForFunction((n) => document.querySelectorAll('#history-table tr[data-action="ended"]').length === n + 1, endedBefore);
    await waitText('#history-table tbody tr:first-child', /ended/);
    if (await page.locator('main').getByRole('button', { name: 'Stop canary' }).count()) throw new Error('"Stop canary" is still offered');
    await waitText('#live-version', new RegExp(`^\\s*${v1}\\s*$`));
    await go('#/apps');
    await waitText(`#apps-table tr[data-app="${APP}"] .canary`, /^\s*–\s*none\s*$/);
  });

  await run('8. every page: screenshot and axe (no serious or critical violation)', async () => {
    const ready = {
      apps: ['#/apps', '#apps-table'],
      app: [`#/apps/${APP}`, '#versions-table'],
      functions: ['#/functions', '#functions-table'],
      function: [`#/functions/${APP}/web`, '#chart-requests canvas'],
      invocations: [`#/invocations?fn=${encodeURIComponent(`${APP}/web`)}`, '#invocations-table'],
      invocation: [`#/invocations/${failedInvocation}`, '#invocation-logs'],
      logs: [`#/logs?fn=${encodeURIComponent(`${APP}/web`)}`, '#logs-state'],
      usage: ['#/usage?period=1h', '#usage-table'],
      events: [`#/events?fn=${encodeURIComponent(`${APP}/worker`)}`, '#dead-letters-table'],
      health: ['#/health', '#readiness'],
    };
    if (!failedInvocation) delete ready.invocation;
    for (const [name, [hash, selector]] of Object.entries(ready)) {
      step = `8. page ${name}`;
      await go(hash);
      await page.locator(selector).first().waitFor();
      if (name === 'logs') {
        // The live tail: a line printed now shows up without a reload.
        await waitText('#logs-state', /Following/);
        const marker = `e2e-${Date.now()}`;
        const r = await fetch(`${GATEWAY}/${APP}/print?text=${marker}`);
        const printed = await r.text();
        // A line that was never printed is not the live tail's fault.
        if (r.status !== 200) throw new Error(`print answered ${r.status}: ${printed}`);
        await waitText('#log-lines', new RegExp(marker), 60_000);
        // The stream filter hides stdout lines when stderr is chosen.
        await page.getByLabel('Stream').selectOption('stderr');
        await page.waitForFunction((m) => !(document.querySelector('#log-lines')?.textContent || '').includes(m), marker);
        await page.getByLabel('Stream').selectOption('');
        await waitText('#log-lines', new RegExp(marker));
      }
      if (name === 'usage') {
        // Export CSV: a client-side download with a header row.
        const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
        const csv = await readFile(await download.path(), 'utf8');
        const [header, ...rows] = csv.trim().split(/\r\n/);
        if (!header.startsWith('app,function,requests,') || !rows.some((r) => r.startsWith(`${APP},web,`))) {
          throw new Error(`the exported CSV (${download.suggestedFilename()}) is not as expected:\n${csv.slice(0, 400)}`);
        }
      }
      const expectedTitle = name === 'invocation' ? 'Invocation' : name === 'function' ? 'Function' : name === 'app' ? 'App' : null;
      const title = await page.title();
      if (!title.includes('Stratus console') || (expectedTitle && !title.startsWith(expectedTitle))) throw new Error(`page ${name} has the title "${title}"`);
      await shot(name);
      const minor = await axeCheck(name);
      console.log(`    ${name}: ${OUT}/${name}.png, axe clean${minor ? ` (${minor} minor/moderate)` : ''}`);
    }
  });

  await run('9. phone size: no horizontal overflow, navigation reachable', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [name, hash, selector] of [
      ['phone-apps', '#/apps', '#apps-table'],
      ['phone-app', `#/apps/${APP}`, '#history-table'],
      ['phone-function', `#/functions/${APP}/web`, '#chart-requests canvas'],
    ]) {
      step = `9. ${name}`;
      await go(hash);
      await page.locator(selector).first().waitFor();
      // Charts take the width they are given (uPlot setSize on resize).
      if (name === 'phone-function') {
        await page.waitForFunction(() => {
          const c = document.querySelector('#chart-requests .uplot');
          return c && c.getBoundingClientRect().right <= 390;
        });
      }
      await shot(name);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > 390) throw new Error(`${name}: the page is ${width} px wide at a 390 px viewport`);
    }
    const functionsLink = page.locator('nav[aria-label="Main"]').getByRole('link', { name: 'Functions' });
    if (!(await functionsLink.isVisible())) {
      await page.getByRole('button', { name: 'Menu' }).click();
    }
    await functionsLink.waitFor({ state: 'visible' });
    await functionsLink.click();
    await page.locator('#functions-table').waitFor();
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await run('10. keyboard: skip link, navigation, Enter on Functions', async () => {
    await go('#/apps');
    await page.reload();
    await page.locator('#apps-table').waitFor();
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement?.textContent?.trim());
    if (first !== 'Skip to content') throw new Error(`the first Tab stop is "${first}", not the skip link`);
    const skipVisible = await page.locator('.skip-link').evaluate((el) => el.getBoundingClientRect().top >= 0);
    if (!skipVisible) throw new Error('the skip link is not shown when focused');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement?.id === 'main');
    // From the top again: Tab through the header to "Functions".
    await page.reload();
    await page.locator('#apps-table').waitFor();
    let reached = false;
    for (let i = 0; i < 12 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(
        () => document.activeElement?.closest('nav[aria-label="Main"]') && document.activeElement.textContent.trim() === 'Functions',
      );
    }
    if (!reached) throw new Error('Tab never reached "Functions" in the navigation');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    if (outline === 'none') throw new Error('the focused navigation link shows no focus outline');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash === '#/functions');
    await page.locator('#functions-table').waitFor();
    await waitText('main h1', /^Functions$/);
  });

  await run('11. no console errors or page errors', async () => {
    if (consoleErrors.length) throw new Error(`the browser reported errors:\n  ${consoleErrors.join('\n  ')}`);
  });

  const skipped = results.filter((r) => r.startsWith('SKIP')).length;
  console.log(`\ne2e passed: ${results.length - skipped} steps${skipped ? `, ${skipped} skipped` : ''}; screenshots in ${OUT}`);
  await browser.close();
  process.exit(0);
} catch (e) {
  console.error(`\ne2e FAILED at step "${step}":\n${e && e.stack ? e.stack : e}`);
  if (consoleErrors.length) console.error(`\nbrowser errors seen:\n  ${consoleErrors.join('\n  ')}`);
  try {
    await page.screenshot({ path: resolve(OUT, 'failure.png'), fullPage: true });
    console.error(`\nscreenshot: ${resolve(OUT, 'failure.png')} (page ${page.url()})`);
  } catch (shotError) {
    console.error(`(no failure screenshot: ${shotError.message})`);
  }
  await browser.close().catch(() => {});
  process.exit(1);
}
