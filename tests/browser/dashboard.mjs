// Drives the core's dashboard in headless Chromium. Started by
// tests/tests/dashboard.rs, which owns the core and the test nodes.
//
// Talks to the Rust test over stdio: prints `step NAME` when it needs the
// test to act (or to check something) and waits for a `go` line on stdin.
// Prints `done` and exits 0 when every check passed; exits 1 otherwise.
//
// Environment: HB_URL (the dashboard, e.g. http://127.0.0.1:9002/),
// HB_TOKEN, HB_NODE_A / HB_NODE_A_NAME (an approved, connected node with pot
// cowrie-01), HB_NODE_B (a node pending approval), HB_MARKER (the password
// of the event the test sends), HB_XSS (the hostile username),
// HB_SCREENSHOT (png path), HB_CHROMIUM (browser binary), HB_PROFILE (a
// fresh user data dir), HB_ALERT_ERROR (the hostile last error of the
// alert channel `hook` the test reported; its first alert's title is
// HB_XSS, the alert reported at step `ready` is titled `HB_MARKER-alert`),
// and for the analyst's views: HB_SRC (the attacker's address), HB_SESSION
// and HB_HOSTILE_SESSION (its sessions), HB_HOSTILE_CMD, HB_HOSTILE_UA,
// HB_HOSTILE_LOG (a command, a user agent, a pot's log line), HB_NODE_C /
// HB_NODE_C_NAME (an Extension node with a hostile name) and HB_SHOTS (a
// directory for one screenshot per page).

import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

const URL_ = env('HB_URL');
const TOKEN = env('HB_TOKEN');
const NODE_A = env('HB_NODE_A');
const NODE_A_NAME = env('HB_NODE_A_NAME');
const NODE_B = env('HB_NODE_B');
const MARKER = env('HB_MARKER');
const XSS = env('HB_XSS');
const SCREENSHOT = env('HB_SCREENSHOT');
const CHROMIUM = process.env.HB_CHROMIUM || '/usr/bin/chromium';
const PROFILE = env('HB_PROFILE');
const ALERT_ERROR = env('HB_ALERT_ERROR');
const SHOTS = env('HB_SHOTS');
const SRC = env('HB_SRC');
const SESSION = env('HB_SESSION');
const HOSTILE_SESSION = env('HB_HOSTILE_SESSION');
const HOSTILE_CMD = env('HB_HOSTILE_CMD');
const HOSTILE_UA = env('HB_HOSTILE_UA');
const HOSTILE_LOG = env('HB_HOSTILE_LOG');
const NODE_C = env('HB_NODE_C');
const NODE_C_NAME = env('HB_NODE_C_NAME');

const lines = createInterface({ input: process.stdin });
const waiting = [];
lines.on('line', (l) => {
  const w = waiting.shift();
  if (w) w(l.trim());
});

// Tells the test `name` and waits for its `go`.
async function step(name) {
  const reply = new Promise((resolve) => waiting.push(resolve));
  process.stdout.write(`step ${name}\n`);
  const got = await reply;
  if (got !== 'go') throw new Error(`step ${name}: the test answered \`${got}\``);
}

function log(msg) {
  process.stderr.write(`[dashboard.mjs] ${msg}\n`);
}

const problems = [];
let dialogs = 0;

const context = await chromium.launchPersistentContext(PROFILE, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1400, height: 1000 },
  timeout: 30000,
});

// "Copy as JSON" is checked by reading the clipboard back.
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(URL_).origin }).catch(() => {});

let failed = false;
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(10000);
  page.on('dialog', async (d) => {
    dialogs++;
    problems.push(`a ${d.type()} dialog opened: ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(t)) {
      problems.push(`CSP: ${t}`);
    }
  });

  // 1. Load, enter the token.
  await page.goto(URL_, { waitUntil: 'domcontentloaded' });
  await page.fill('#token', TOKEN);
  await page.click('#token-save');
  const stored = await page.evaluate(() => sessionStorage.getItem('honeybee.token'));
  if (stored !== TOKEN) throw new Error('the token is not kept in sessionStorage');

  // 2. The fleet shows node A (exact id, > 2^53) with its pot, and node B pending.
  const rowA = page.locator(`tr[data-node-id="${NODE_A}"]`);
  await rowA.waitFor();
  const rowAText = await rowA.innerText();
  if (!rowAText.includes(NODE_A_NAME)) throw new Error(`row of node A lacks its name: ${rowAText}`);
  if (!rowAText.includes(NODE_A)) throw new Error(`row of node A lacks its exact id ${NODE_A}: ${rowAText}`);
  await rowA.locator('li[data-pot-id="cowrie-01"]').waitFor();
  const rowB = page.locator(`tr[data-node-id="${NODE_B}"]`);
  await rowB.locator('button[data-action="approve"]').waitFor();
  log('fleet shows both nodes');
  // The cores panel lists this core, healthy, and node A says where it is.
  await page.locator('#cores li.core .badge[data-state="Running"]').first().waitFor();
  if (!(await rowA.innerText()).includes('connected to ')) {
    throw new Error('row of node A does not name the core it is connected to');
  }
  log('cores panel shows the core');

  // 2b. The Alerts panel: the reported channel's figures, and the alert
  //     with a hostile title and error, shown as text.
  const hook = page.locator('#alert-channels tr[data-module="alerts"][data-channel="hook"]');
  await hook.waitFor();
  const cells = await hook.locator('td').allTextContents();
  const want = { 1: '12', 2: '1', 3: '3', 4: '0', 5: '2', 6: '40 ms / 180 ms', 7: ALERT_ERROR };
  for (const [i, v] of Object.entries(want)) {
    if (cells[i] !== v) throw new Error(`alert channel cell ${i} is ${JSON.stringify(cells[i])}, expected ${JSON.stringify(v)}: ${JSON.stringify(cells)}`);
  }
  const first = page.locator('#alert-recent tr[data-alert-id="tripwire/8193"][data-outcome="failed"]');
  await first.waitFor();
  const row = await first.locator('td').allTextContents();
  if (row[1] !== 'high' || row[2] !== 'tripwire' || row[3] !== 'hook' || row[4] !== 'failed') {
    throw new Error(`recent alert row: ${JSON.stringify(row)}`);
  }
  const title = await first.locator('td.title').textContent();
  if (title !== XSS) throw new Error(`hostile alert title rendered as ${JSON.stringify(title)}`);
  const injected = await page.locator('#alerts-panel img, #alerts-panel script').count();
  if (injected !== 0) throw new Error(`${injected} elements were injected into the Alerts panel`);
  log('alerts panel shows the report as text');

  // 3. Live: subscribed on the stream port.
  await page.locator('#live[data-state="live"]').waitFor();
  log('stream is live');

  // 4. The test sends an event and a hostile one through node A; both show
  //    in the live feed within 2 s, the hostile one as text.
  await step('ready');
  const t0 = Date.now();
  await page.locator('#events tr', { hasText: MARKER }).first().waitFor({ timeout: 2000 });
  await page
    .locator('#events td.user')
    .filter({ hasText: XSS })
    .first()
    .waitFor({ timeout: Math.max(1, 2000 - (Date.now() - t0)) });
  log(`live events shown after ${Date.now() - t0} ms`);
  const userText = await page.locator('#events td.user').filter({ hasText: XSS }).first().textContent();
  if (userText !== XSS) throw new Error(`hostile username rendered as ${JSON.stringify(userText)}`);
  const imgs = await page.locator('#events img, #nodes img, .chart img').count();
  if (imgs !== 0) throw new Error(`${imgs} <img> elements were injected`);

  // 5. Filters: by source prefix, then by event type prefix.
  await page.fill('#f-src', '198.51.100.');
  await page.click('#filters button[type="submit"]');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#events tr')];
    return rows.length > 0 && rows.every((r) => r.cells[4] && r.cells[4].textContent.startsWith('198.51.100.'));
  });
  await page.click('#f-clear');
  await page.fill('#f-type', 'cowrie.login.suc');
  await page.click('#filters button[type="submit"]');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#events tr')];
    return rows.length > 0 && rows.every((r) => r.getAttribute('data-event-type') === 'cowrie.login.success');
  });
  await page.click('#f-clear');
  await page.locator('#events tr', { hasText: MARKER }).first().waitFor();
  log('filters work');

  // 6. Exact u64 parsing (ids above 2^53, digits inside strings untouched).
  const parsed = await page.evaluate(() =>
    window.HoneyBeeDashboard.parseJson(
      '{"node_id":18446744073709551615,"n":[9007199254740993, 12],"s":"x:12345678901234567,","f":1.5e300}'
    )
  );
  if (parsed.node_id !== '18446744073709551615' || parsed.n[0] !== '9007199254740993' || parsed.n[1] !== 12 ||
      parsed.s !== 'x:12345678901234567,' || parsed.f !== 1.5e300) {
    throw new Error(`parseJson is not exact: ${JSON.stringify(parsed)}`);
  }

  // 7. Reconnect: the stream drops, the page comes back live by itself and
  //    shows the next event.
  await page.evaluate(() => window.HoneyBeeDashboard.dropStream());
  await page.locator('#live[data-state="off"]').waitFor({ timeout: 2000 });
  await page.locator('#live[data-state="live"]').waitFor({ timeout: 5000 });
  log('stream reconnected');
  await step('reconnected');
  await page.locator('#events tr', { hasText: `${MARKER}-again` }).first().waitFor({ timeout: 2000 });

  // 8. Approve node B by clicking.
  await rowB.locator('button[data-action="approve"]').click();
  await rowB.locator('.badge[data-state="Pending"]').waitFor({ state: 'detached' });
  log('node B approved in the page');
  await step('approved');

  // 9. Pot actions on node A: stop (the node answers Stopped, shown live),
  //    then install a second pot.
  await rowA.locator('li[data-pot-id="cowrie-01"] button[data-action="stop"]').click();
  await step('stop-clicked');
  await rowA.locator('li[data-pot-id="cowrie-01"] .badge[data-state="Stopped"]').waitFor({ timeout: 2000 });
  // An Extension node runs no pots: its row offers no install form.
  const rowC = page.locator(`tr[data-node-id="${NODE_C}"]`);
  await rowC.waitFor();
  const cForms = await rowC.locator('form.install').count();
  if (cForms !== 0) throw new Error(`the Extension node's row offers ${cForms} install forms`);
  const install = rowA.locator('form.install');
  await install.locator('input').nth(0).fill('cowrie-02');
  await install.locator('button[data-action="install"]').click();
  await step('install-clicked');
  await rowA.locator('li[data-pot-id="cowrie-02"] .badge[data-state="Running"]').waitFor({ timeout: 2000 });
  log('pot actions work');

  // 9b. The Alerts panel refreshes by itself: the report sent at step
  //     `ready` shows without a reload.
  await page
    .locator('#alert-recent tr[data-alert-id="tripwire/8200"] td.title', { hasText: `${MARKER}-alert` })
    .waitFor({ timeout: 15000 });
  const sent = await hook.locator('td').nth(1).textContent();
  if (sent !== '13') throw new Error(`alert channel sent is ${JSON.stringify(sent)} after the second report`);
  log('alerts panel refreshed');

  // 10. Charts drawn as SVG from /api/v1/stats (the page refreshes them).
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.locator('#live[data-state="live"]').waitFor();
  await page.locator('#chart-minutes svg rect.bar:not([data-count="0"])').first().waitFor();
  await page.locator('#chart-usernames svg text.label', { hasText: 'root' }).first().waitFor();
  await page.locator('#chart-credentials svg text.label', { hasText: 'root:' }).first().waitFor();
  await page.locator('#chart-commands svg text.label', { hasText: 'cat /etc/passwd' }).first().waitFor();
  await page.locator('#events td.user').filter({ hasText: XSS }).first().waitFor();
  const svgImgs = await page.locator('img').count();
  if (svgImgs !== 0) throw new Error(`${svgImgs} <img> elements after reload`);

  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  log(`screenshot: ${SCREENSHOT}`);

  // 11. The analyst's views. The test sends an attacker's story (from the
  //     public address SRC, as event data) through node A and through node
  //     C, an Extension node with a hostile name.
  await step('views');
  const noInjection = async (where) => {
    const found = await page.evaluate(() => {
      const bad = [];
      for (const e of document.querySelectorAll('*')) {
        for (const a of e.attributes) if (/^on/i.test(a.name)) bad.push(`${e.tagName}[${a.name}]`);
      }
      const page = document.getElementById('page');
      const extra = page ? page.querySelectorAll('img, script, iframe, object').length : 0;
      return { bad, extra, xss: !!window.__hb_xss };
    });
    if (found.bad.length || found.extra || found.xss) {
      throw new Error(`${where}: injected ${JSON.stringify(found)}`);
    }
    if (dialogs) throw new Error(`${where}: ${dialogs} dialogs opened`);
  };
  const texts = (sel) => page.locator(sel).allTextContents();
  const same = (got, want, what) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`${what}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
  };

  // Every address is a link: in the live feed and in the top sources.
  await page.locator(`#events a.link[data-ip="${SRC}"]`).first().waitFor();
  await page.locator('#chart-sources a[data-ip]').first().waitFor({ timeout: 20000 });
  // A live event (its id from the stream's cursor) opens with every field.
  const liveRow = page.locator('#events tr[data-event-type="extension.connection"]').first();
  if (!/^\d+$/.test((await liveRow.getAttribute('data-event-id')) || '')) throw new Error('a live event row has no id');
  await liveRow.locator('td').nth(3).click();
  await page.locator('#detail:not([hidden]) tr[data-field="data.user_agent"]').waitFor();
  same(await page.locator('tr[data-field="data.user_agent"] td').textContent(), HOSTILE_UA, 'live event detail (hostile user agent)');
  same(await page.locator('tr[data-field="node"] a.link').textContent(), NODE_C_NAME, 'live event detail (hostile node name)');
  await noInjection('live event detail');
  await page.keyboard.press('Escape');
  await page.locator('#detail').waitFor({ state: 'hidden' });
  await page.locator(`#events a.link[data-ip="${SRC}"]`).first().click();
  await page.waitForFunction((ip) => location.hash === '#/source/' + ip, SRC);

  // The source page: all of the story.
  await page.locator('#source-facts [data-fact="event_count"]').waitFor();
  same((await page.locator('#source-facts [data-fact="event_count"]').textContent()).trim(), '11', 'event count');
  same(await page.locator('.page-head .subject').textContent(), SRC, 'source heading');
  const touched = page.locator('table.touched tbody tr');
  same(await touched.count(), 2, 'pots touched');
  same(await touched.nth(0).locator('a.link').textContent(), NODE_A_NAME, 'first node touched');
  same(await touched.nth(1).locator('a.link').textContent(), NODE_C_NAME, 'second node touched (hostile name)');
  same(await touched.nth(1).locator('td').nth(2).textContent(), 'extension', 'second pot touched');
  same(await page.locator('table.ports tr[data-port="2222"] td').nth(1).textContent(), '10', 'port 2222 count');
  same(await page.locator('table.ports tr[data-port="80"] td').nth(1).textContent(), '1', 'port 80 count');
  const users = (await texts('table.credentials td.user')).sort();
  same(users, [XSS, 'root'].sort(), 'usernames tried');
  same(await texts('table.commands td.input'), ['uname -a', HOSTILE_CMD, 'cat /etc/shadow', 'id'], 'commands in order');
  same(await texts('[data-fp="ssh_client_versions"] .value'), ['SSH-2.0-Go'], 'SSH client versions');
  same(await texts('[data-fp="user_agents"] .value'), [HOSTILE_UA], 'user agents (hostile)');
  const sessionIds = await page.locator('table.sessions tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-session')));
  same(sessionIds, [HOSTILE_SESSION, SESSION], 'sessions, newest first');
  same(await page.locator('table.sessions a.link').first().textContent(), HOSTILE_SESSION, 'hostile session id as text');
  same(await page.locator('table.timeline tbody tr.event').count(), 11, 'timeline rows');
  await noInjection('source page');
  await page.screenshot({ path: `${SHOTS}/source.png`, fullPage: true });
  log('source page shows the story');

  // The session: its commands in order, with their offsets; replayed.
  await page.locator(`table.sessions a[data-session-link="${SESSION}"]`).click();
  await page.locator('#replay .cmd').first().waitFor();
  same(await texts('#replay .cmd .input'), ['uname -a', HOSTILE_CMD, 'cat /etc/shadow'], 'session commands');
  same(await page.locator('#replay .cmd').evaluateAll((l) => l.map((c) => c.getAttribute('data-offset'))), ['5', '7', '9'], 'command offsets');
  same(await page.locator('table.session-events tbody tr.event').count(), 8, 'session events');
  await page.locator('button[data-action="replay"]').click();
  await page.waitForFunction(() => document.querySelectorAll('#replay .cmd').length === 3, null, { timeout: 10000 });
  await noInjection('session view');
  await page.screenshot({ path: `${SHOTS}/session.png`, fullPage: true });

  // An event's detail: every field, the raw JSON as stored, copied.
  // (On its type: the row's links lead elsewhere.)
  await page.locator('table.session-events tr[data-event-type="cowrie.login.success"] td').nth(3).click();
  await page.locator('#detail:not([hidden]) tr[data-field="data.username"]').waitFor();
  same(await page.locator('tr[data-field="data.username"] td').textContent(), XSS, 'detail username');
  same(await page.locator('tr[data-field="event_type"] td').textContent(), 'cowrie.login.success', 'detail type');
  same(await page.locator('tr[data-field="data.session"] td').textContent(), SESSION, 'detail session');
  const eventId = (await page.locator('tr[data-field="id"] td').textContent()).trim();
  const storedEvent = await page.evaluate(async ([id, token]) => {
    const r = await fetch('/api/v1/events/' + id, { headers: { Authorization: 'Bearer ' + token } });
    return r.text();
  }, [eventId, TOKEN]);
  const shown = JSON.parse(await page.locator('#detail-raw').textContent());
  same(shown, JSON.parse(storedEvent), 'raw JSON of the event');
  await page.locator('#detail-copy').click();
  await page.locator(`#detail-copy[data-copied="${storedEvent.length}"]`).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText().catch(() => null));
  if (copied !== null && copied !== storedEvent) throw new Error(`copied ${JSON.stringify(copied)}, stored ${storedEvent}`);
  await noInjection('event detail');
  await page.screenshot({ path: `${SHOTS}/detail.png`, fullPage: false });
  await page.keyboard.press('Escape');
  await page.locator('#detail').waitFor({ state: 'hidden' });
  log(`session view and event detail work (clipboard ${copied === null ? 'not readable here' : 'checked'})`);

  // The session with a hostile id, reached from the source page.
  await page.goBack();
  await page.locator('table.sessions a.link').first().waitFor();
  await page.locator('table.sessions a.link').first().click();
  await page.locator('#replay .cmd').first().waitFor();
  same(await page.locator('.page-head .subject').textContent(), HOSTILE_SESSION, 'hostile session heading');
  same(await texts('#replay .cmd .input'), ['id'], 'hostile session commands');
  await noInjection('hostile session');

  // Node A's page: status history; logs and metrics asked of the pot.
  await page.locator(`#session-facts a[data-node-link="${NODE_A}"]`).click();
  await page.locator('#node-facts').waitFor();
  if (!(await page.locator('#node-facts').innerText()).includes(NODE_A)) throw new Error('node page lacks the exact id');
  const history = await texts('table.history tbody td:nth-child(2)');
  if (!history.includes('Running') || !history.includes('Connected')) throw new Error(`status history: ${JSON.stringify(history)}`);
  const potRow = page.locator('table.pots-table tr[data-pot-id="cowrie-01"]');
  await potRow.locator('button[data-action="logs"]').click();
  await step('logs-clicked');
  await page.locator('div.pot-results[data-results="cowrie-01"] pre.logs', { hasText: HOSTILE_LOG }).waitFor({ timeout: 5000 });
  same(await page.locator('div.pot-results[data-results="cowrie-01"] pre.logs').textContent(), `cowrie started\n${HOSTILE_LOG}`, 'pot logs');
  await potRow.locator('button[data-action="metrics"]').click();
  await step('metrics-clicked');
  await page.locator('div.pot-results[data-results="cowrie-01"] [data-metric="rss_bytes"]').waitFor({ timeout: 5000 });
  same(await page.locator('[data-metric="rss_bytes"]').textContent(), '12345678', 'pot metrics');
  same(await page.locator('div.pot-results[data-results="cowrie-01"] pre.logs').count(), 1, 'logs kept beside metrics');
  await noInjection('node page');
  await page.screenshot({ path: `${SHOTS}/node.png`, fullPage: true });

  // Node C's page: its hostile name as text, the ports taken and skipped.
  await page.evaluate((id) => { location.hash = '#/node/' + id; }, NODE_C);
  await page.locator('#ports-taken').waitFor();
  same(await page.locator('.page-head .subject').textContent(), NODE_C_NAME, 'node C name');
  same(await page.locator('[data-taken="tcp"]').textContent(), '21, 80', 'TCP ports taken');
  same(await page.locator('[data-taken="udp"]').textContent(), '53', 'UDP ports taken');
  same(await texts('table.skipped tr[data-skipped="22"] td'), ['TCP', '22', 'in use'], 'port skipped and why');
  await noInjection('extension node page');
  await page.screenshot({ path: `${SHOTS}/node-extension.png`, fullPage: true });
  log('node pages work');

  // The map, shaded from `top_countries` (the enrichment's shape; given
  // here when this core has no GeoIP database), and the time range.
  const statsUrls = [];
  const eventUrls = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/stats')) statsUrls.push(r.url());
    if (/\/api\/v1\/events\?/.test(r.url())) eventUrls.push(r.url());
  });
  await page.route('**/api/v1/stats**', async (route) => {
    const resp = await route.fetch();
    if (resp.status() !== 200) return route.fulfill({ response: resp });
    const body = await resp.json();
    if (!Array.isArray(body.top_countries) || body.top_countries.length === 0) {
      body.top_countries = [
        { value: 'GB', name: 'United Kingdom', count: 7 },
        { value: 'DE', name: 'Germany', count: 2 },
        { value: 'US', name: XSS, count: 1 },
      ];
    }
    return route.fulfill({ response: resp, json: body });
  });
  await page.evaluate(() => { location.hash = '#/'; });
  await page.locator('#home:not([hidden])').waitFor();
  await page.locator('#range-pick').selectOption('7d');
  await page.waitForFunction(() => /last 7 days/.test(document.getElementById('totals').textContent));
  if (!statsUrls.some((u) => /[?&]range=7d\b/.test(u) || /[?&]hours=168\b/.test(u))) {
    throw new Error(`no stats request for 7 days: ${JSON.stringify(statsUrls)}`);
  }
  await page.locator('#map path[data-code="GB"][data-count="7"]').waitFor();
  const gb = page.locator('#map path[data-code="GB"]');
  if (!(await gb.getAttribute('fill'))) throw new Error('GB is not shaded');
  same(await gb.locator('title').textContent(), 'United Kingdom (GB): 7 events', 'GB title');
  same(await page.locator('#map path[data-code="FR"]').getAttribute('data-count'), '0', 'FR count');
  same(await page.locator('#map path[data-code="US"] title').textContent(), `${XSS} (US): 1 event`, 'hostile country name as text');
  const paths = await page.locator('#map path.country').count();
  if (paths < 150) throw new Error(`only ${paths} countries drawn`);
  same(await page.locator('#countries tr').first().getAttribute('data-code'), 'GB', 'top country');
  await noInjection('map');
  // A custom range drives the stats and the event table.
  statsUrls.length = 0;
  eventUrls.length = 0;
  await page.locator('#range-pick').selectOption('custom');
  const pad = (n) => String(n).padStart(2, '0');
  const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  await page.fill('#range-from', local(new Date(Date.now() - 2 * 3600 * 1000)));
  await page.fill('#range-to', local(new Date(Date.now() + 3600 * 1000)));
  await page.click('#range button[type="submit"]');
  await page.waitForFunction(() => / – /.test(document.getElementById('totals').textContent));
  if (!statsUrls.some((u) => (/[?&]since=/.test(u) && /[?&]until=/.test(u)) || /[?&]hours=[23]\b/.test(u))) {
    throw new Error(`no stats request for the custom range: ${JSON.stringify(statsUrls)}`);
  }
  if (!eventUrls.some((u) => /[?&]since=/.test(u) && /[?&]until=/.test(u))) {
    throw new Error(`the event table did not follow the range: ${JSON.stringify(eventUrls)}`);
  }
  await page.locator(`#events a.link[data-ip="${SRC}"]`).first().waitFor();
  await page.screenshot({ path: `${SHOTS}/map.png`, fullPage: true });
  log(`map and time range work; screenshots in ${SHOTS}`);

  if (dialogs !== 0 || problems.length) throw new Error(problems.join('\n'));
  process.stdout.write('done\n');
} catch (e) {
  failed = true;
  log(`FAILED: ${e && e.stack ? e.stack : e}`);
  for (const p of problems) log(`also: ${p}`);
  try {
    const page = context.pages()[0];
    if (page) await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-failed.png'), fullPage: true });
  } catch (_) {
    // best effort
  }
} finally {
  await context.close().catch(() => {});
  lines.close();
}
process.exit(failed ? 1 : 0);
