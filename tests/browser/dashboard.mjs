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
// HB_XSS, the alert reported at step `ready` is titled `HB_MARKER-alert`).

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
