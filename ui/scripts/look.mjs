// Looks at the UI the way a person would: serves the mock build (npm run build:mock) under the
// app's CSP, drives Debian's Chromium with playwright-core, saves screenshots to ui/screenshots/
// and fails on any console error or CSP violation. Usage: node scripts/look.mjs
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('../dist-mock/', import.meta.url));
const out = fileURLToPath(new URL('../screenshots/', import.meta.url));
mkdirSync(out, { recursive: true });
if (!existsSync(join(root, 'index.html'))) throw new Error('run `npm run build:mock` first');

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^\/+/, '');
  const file = join(root, path === '' ? 'index.html' : path);
  if (path === 'favicon.ico') {
    res.writeHead(204).end();
    return;
  }
  if (!file.startsWith(root) || !existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    // The policy the desktop app runs under.
    'content-security-policy': "default-src 'self'",
  });
  res.end(readFileSync(file));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
async function page(query = '', scheme = 'light') {
  const context = await browser.newContext({ viewport: { width: 1280, height: 820 }, colorScheme: scheme });
  // The app runs with Tauri's freezePrototype: nothing may patch Object.prototype.
  await context.addInitScript(() => Object.freeze(Object.prototype));
  const p = await context.newPage();
  p.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`${query}: ${m.text()}`);
  });
  p.on('pageerror', (e) => problems.push(`${query}: ${e.message}`));
  p.on('dialog', (d) => {
    problems.push(`${query}: a JS dialog opened: ${d.message()}`);
    void d.dismiss();
  });
  await p.goto(base + 'index.html' + query);
  return p;
}
const shot = (p, name) => p.screenshot({ path: join(out, `${name}.png`) });

// Queue and item.
let p = await page('?n=10000');
await p.waitForSelector('[data-testid=item-view]');
await p.waitForTimeout(300);
await shot(p, 'queue-item');
await p.locator('[data-testid=attribution-chart]').scrollIntoViewIfNeeded();
await p.waitForTimeout(100);
await shot(p, 'item-evidence');

// Keystroke to next item painted, with 10 000 items: J then two animation frames.
const times = [];
for (let i = 0; i < 40; i++) {
  const before = await p.getAttribute('[data-testid=item-view]', 'data-item-id');
  const t = await p.evaluate(async (prev) => {
    const start = performance.now();
    window.dispatchEvent(new KeyboardEvent('keydown', { key: 'j', bubbles: true }));
    for (;;) {
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const id = document.querySelector('[data-testid=item-view]')?.getAttribute('data-item-id');
      if (id !== prev) return performance.now() - start;
    }
  }, before);
  times.push(t);
}
times.sort((a, b) => a - b);
console.log(`J to next item painted (10 000 items, mock backend): median ${times[20].toFixed(1)} ms, p95 ${times[37].toFixed(1)} ms`);

const own = await p.evaluate(() => ({ k: window.countersignPerf.keyToPaint.slice(), q: window.countersignPerf.queueInteractiveAt }));
own.k.sort((a, b) => a - b);
console.log(`app's own record: ${own.k.length} keys, median ${own.k[Math.floor(own.k.length / 2)]?.toFixed(1)} ms, p95 ${own.k[Math.ceil(own.k.length * 0.95) - 1]?.toFixed(1)} ms; queue interactive at ${own.q?.toFixed(0)} ms`);

// Approve with A twice quickly: one decision (the second press lands on the next item before
// it has been on screen for the dwell time, or on the first while it is in flight).
await p.waitForSelector('[data-testid=item-view][data-armed=true]');
const rowsBefore = Number(await p.getAttribute('[data-testid=count-total]', 'data-count'));
await p.keyboard.press('a');
await p.keyboard.press('a');
await p.waitForTimeout(400);
const rowsAfter = Number(await p.getAttribute('[data-testid=count-total]', 'data-count'));
console.log(`double A: total ${rowsBefore} -> ${rowsAfter}`);
if (rowsBefore - rowsAfter !== 1) problems.push(`double A made ${rowsBefore - rowsAfter} decisions`);
// A, then A again once the next item is armed: two decisions, each on an item that was seen.
await p.keyboard.press('a');
await p.waitForSelector('[data-testid=item-view][data-armed=true]');
await p.keyboard.press('a');
await p.waitForTimeout(100);
const rowsLater = Number(await p.getAttribute('[data-testid=count-total]', 'data-count'));
if (rowsAfter - rowsLater !== 2) problems.push(`two deliberate A presses made ${rowsAfter - rowsLater} decisions`);

// Correction editor with a validation error showing.
await p.waitForSelector('[data-testid=item-view][data-armed=true]');
await p.keyboard.press('c');
await p.waitForSelector('[data-testid=correction-editor]');
await p.fill('[data-testid=field-amount]', '25000');
await p.locator('[data-testid=field-term_months]').focus();
await p.waitForTimeout(100);
await shot(p, 'correction-editor');
await p.keyboard.press('Escape');
await p.waitForTimeout(100);
console.log('editor closed by Esc:', (await p.locator('[data-testid=correction-editor]').count()) === 0);

// A correction with the keyboard: C, type, pick a reason, Enter.
await p.waitForSelector('[data-testid=item-view][data-armed=true]');
const corrected = await p.getAttribute('[data-testid=item-view]', 'data-item-id');
await p.keyboard.press('c');
await p.waitForSelector('[data-testid=correction-editor]');
await p.fill('[data-testid=field-amount]', '9000');
await p.selectOption('[data-testid=reason-select]', 'R-amount');
await p.locator('[data-testid=field-amount]').press('Enter');
await p.waitForSelector('[data-testid=correction-editor]', { state: 'detached' });
const afterCorrect = await p.getAttribute('[data-testid=item-view]', 'data-item-id');
if (afterCorrect === corrected) problems.push('the corrected item is still shown');
// An escalation without a reason is refused in the dialog, with one it is saved.
await p.waitForSelector('[data-testid=item-view][data-armed=true]');
await p.keyboard.press('e');
await p.waitForSelector('[data-testid=escalate-dialog]');
await p.click('[data-testid=escalate-submit]');
await p.waitForSelector('[data-testid=escalate-error]');
await p.selectOption('[data-testid=escalate-dialog] [data-testid=reason-select]', 'R-authority');
await p.click('[data-testid=escalate-submit]');
await p.waitForSelector('[data-testid=escalate-dialog]', { state: 'detached' });
console.log('correction and escalation saved with the keyboard; pending:', await p.getAttribute('[data-testid=status-pending]', 'data-count'));
const heap = await p.evaluate(() => performance.memory?.usedJSHeapSize ?? 0);
console.log(`JS heap with 10 000 items: ${(heap / 1048576).toFixed(1)} MiB`);

// Key help.
await p.keyboard.press('?');
await p.waitForSelector('[data-testid=help-dialog]');
await shot(p, 'help');
await p.keyboard.press('Escape');

// Conflicts inbox.
await p.click('[data-testid=status-conflicts]');
await p.waitForSelector('[data-testid=conflict-row]');
await shot(p, 'conflicts');
await p.keyboard.press('Escape');

// Sync with progress.
await p.click('[data-testid=sync-button]');
await p.waitForSelector('[data-testid=sync-progress]');
await p.waitForTimeout(200);
await shot(p, 'syncing');
await p.waitForSelector('[data-testid=sync-progress]', { state: 'detached' });
await p.close();

// Hostile model text must show as text and run nothing.
p = await page('?n=200');
await p.waitForSelector('[data-testid=item-view]');
await p.fill('[data-testid=filter-text]', '100007');
await p.waitForTimeout(100);
await p.click('[data-testid=queue-row]');
await p.waitForFunction(() => document.querySelector('[data-testid=item-subject]')?.textContent === 'application-100007');
const rationale = await p.textContent('[data-testid=rationale]');
const imgs = await p.locator('[data-testid=item-view] img, [data-testid=item-view] script').count();
console.log('hostile rationale shown as text:', rationale.startsWith('<img src=x onerror=alert(1)>'), 'elements injected:', imgs);
await shot(p, 'hostile-text');
// A human-only item.
await p.fill('[data-testid=filter-text]', '');
await p.selectOption('[data-testid=filter-lane]', 'human_only');
await p.waitForTimeout(100);
await p.waitForSelector('[data-testid=proposal-withheld]');
await shot(p, 'human-only');
// Deciding it alone: the whole outcome is required. Esc leaves the filter box first.
await p.keyboard.press('Escape');
await p.waitForSelector('[data-testid=item-view][data-armed=true]');
const alone = await p.getAttribute('[data-testid=item-view]', 'data-item-id');
await p.keyboard.press('c');
await p.waitForSelector('[data-testid=correction-editor]');
await p.selectOption('[data-testid=field-decision]', 'decline');
await p.selectOption('[data-testid=reason-select]', 'R-amount');
await p.click('[data-testid=correction-submit]');
await p.waitForSelector('[data-testid=field-error-amount]');
await shot(p, 'human-only-editor');
await p.fill('[data-testid=field-amount]', '5000');
await p.fill('[data-testid=field-term_months]', '24');
await p.locator('[data-testid=field-term_months]').press('Enter');
await p.waitForSelector('[data-testid=correction-editor]', { state: 'detached' });
if ((await p.getAttribute('[data-testid=item-view]', 'data-item-id')) === alone) problems.push('human-only decision did not move on');
await p.close();

// Dark scheme, offline.
p = await page('?n=10000&offline=1', 'dark');
await p.waitForSelector('[data-testid=item-view]');
await p.waitForTimeout(300);
await shot(p, 'queue-item-dark-offline');
await p.close();

// First run with a keyring error.
p = await page('?state=first-run&fail=enroll:keyring_unavailable');
await p.waitForSelector('[data-testid=gate-url]');
await p.fill('[data-testid=gate-url]', 'https://gate.example.bank');
await p.fill('[data-testid=enroll-code]', 'K7Q2-9XPL');
await p.click('[data-testid=enroll-submit]');
await p.waitForSelector('[data-testid=enroll-error]');
await shot(p, 'first-run-error');
await p.close();

await browser.close();
server.close();
if (problems.length) {
  console.error('PROBLEMS:\n' + problems.join('\n'));
  process.exit(1);
}
console.log(`screenshots in ${out}`);
