// The real Countersign Desk window, driven like a reviewer would: first run, claim, decide with
// the keyboard, go offline and come back, and hostile model text. One app session, steps in order.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { DESK_BIN, Driver, Gate, ROOT, decisionOf, screenshot, sleep, tid, workDir } from '../lib/harness.mjs';

const USER = 'rita.reviewer';
// Runs nothing if the page is safe: each payload would set a flag on window.
const XSS = '<img src=x onerror="window.__csXss=1"><script>window.__csXss=2</script>';

let work, gate, driver, browser, deskDir;
const decided = new Map(); // item id -> kind, as the window decided them

async function waitUntil(what, fn, timeout = 15_000) {
  await browser.waitUntil(fn, { timeout, interval: 50, timeoutMsg: `timed out waiting for ${what}` });
}
const el = (id) => browser.$(tid(id));
const attr = async (id, name) => (await el(id)).getAttribute(name);
// textContent, also of parts the layout hides at this window width.
const text = (id) => browser.execute((sel) => document.querySelector(sel)?.textContent ?? '', tid(id));

async function shownItem() {
  const view = await el('item-view');
  await view.waitForExist({ timeout: 10_000 });
  return { id: await view.getAttribute('data-item-id'), lane: await view.getAttribute('data-lane') };
}

/** Waits until the shown item accepts decision keys (the UI ignores them for 200 ms). */
async function armed() {
  await waitUntil('the item to accept decision keys', async () => (await attr('item-view', 'data-armed')) === 'true');
}

async function press(key) {
  await browser.keys(key);
}

/** Moves with J until `want` holds for the shown item; returns it. */
async function findItem(want, label) {
  const seen = new Set();
  for (;;) {
    const item = await shownItem();
    if (await want(item)) return item;
    if (seen.has(item.id)) throw new Error(`no ${label} in the queue`);
    seen.add(item.id);
    await armed();
    await press('j');
    await waitUntil('the next item', async () => (await shownItem()).id !== item.id || seen.size > 200);
  }
}

/** A review item rita may decide: not above her authority and not decided yet. */
async function decidable(item) {
  if (item.lane !== 'review') return false;
  if (decided.has(item.id)) return false;
  return (await browser.$$(tid('above-authority'))).length === 0;
}

/**
 * After a decision the next item is shown at once and the decided one leaves the queue; an
 * approval is still being saved meanwhile ("Saving…"), so wait for that too.
 */
async function expectDecided(item, kind) {
  await waitUntil(`${kind} of ${item.id} to be saved`, async () => {
    const rows = await browser.$$(`${tid('queue-row')}[data-item-id="${item.id}"]`);
    return (
      rows.length === 0 &&
      (await shownItem()).id !== item.id &&
      (await browser.$$(tid('decide-saving'))).length === 0
    );
  });
  decided.set(item.id, kind);
}

/** Closes the info notices so screenshots show the item, not a toast. */
async function dismissNotices() {
  for (const notice of await browser.$$(tid('notice'))) {
    const close = await notice.$('button');
    if (await close.isExisting()) await close.click().catch(() => {});
  }
}

async function pending() {
  return Number(await attr('status-pending', 'data-count'));
}

/** The desk's own record of its decisions, from the desk binary on the same data directory. */
function deskDecisions() {
  const out = execFileSync(DESK_BIN, ['--data-dir', deskDir, 'decisions', '--json', '--limit', '1000'], {
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

describe('Countersign Desk window', () => {
  before(async () => {
    work = workDir();
    deskDir = join(work, 'desk');
    gate = new Gate(work);
    await gate.seed(60);
    await gate.start();
    driver = new Driver();
    await driver.start({ COUNTERSIGN_DESK_DIR: deskDir });
    browser = await driver.session();
  });

  after(async () => {
    await browser?.deleteSession().catch(() => {});
    await driver?.stop();
    await gate?.stop();
    // E2E_KEEP=1 keeps the gate's database and log and the desk's data and log for a look.
    if (process.env.E2E_KEEP) console.log(`e2e: data kept in ${work}`);
    else if (work) rmSync(work, { recursive: true, force: true });
  });

  it('enrolls on first run with the gate URL and a one-time code', async () => {
    await (await el('first-run')).waitForDisplayed({ timeout: 20_000 });
    // Anything the strict CSP blocks from here on (the UI's own styles and scripts included).
    await browser.execute(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`),
      );
    });
    await (await el('gate-url')).setValue(gate.url);
    await (await el('enroll-code')).setValue('wrong-code');
    await (await el('enroll-submit')).click();
    await (await el('enroll-error')).waitForDisplayed({ timeout: 10_000 });
    assert.equal(await attr('enroll-error', 'data-code'), 'gate_refused');

    await (await el('enroll-code')).setValue(gate.code(USER));
    await (await el('device-name')).setValue('e2e laptop');
    await (await el('enroll-submit')).click();
    await (await el('status-bar')).waitForDisplayed({ timeout: 20_000 });
    await waitUntil('the account in the status bar', async () => (await text('account')).includes(USER));
    // A reviewer is offered no supervisor mode, and the window never loaded its code (loading
    // it adds the chunk's stylesheet to the page; supervisor.test.mjs sees it there).
    assert.equal((await browser.$$(tid('mode-supervise'))).length, 0);
    const assets = await browser.execute(() =>
      [...document.querySelectorAll('script[src], link[href]')].map((e) => e.getAttribute('src') ?? e.getAttribute('href')),
    );
    assert.ok(assets.some((a) => a.includes('index-')) && !assets.some((a) => a.includes('SupervisorView')), assets.join(' '));
  });

  it('claims a batch of items into the queue', async () => {
    // A model output whose text carries markup, posted by the source system before the claim.
    hostileSubject = await postHostileOutput();
    await press('o');
    await (await el('claim-dialog')).waitForDisplayed();
    await (await el('claim-limit')).setValue('100');
    await (await el('claim-submit')).click();
    await waitUntil(
      'claimed rows on screen',
      async () => Number(await attr('count-total', 'data-count')) > 10 && (await browser.$$(tid('queue-row'))).length > 5,
      20_000,
    );
    // The list is virtual: only the rows on screen exist, each item once.
    const ids = await browser.execute(
      (sel) => [...document.querySelectorAll(sel)].map((r) => r.getAttribute('data-item-id')),
      tid('queue-row'),
    );
    assert.ok(ids.length > 5, `${ids.length} rows on screen`);
    assert.equal(new Set(ids).size, ids.length, 'each item once in the queue');
    await shownItem();
    await dismissNotices();
    await screenshot(browser, 'queue');
  });

  it('approves with A', async () => {
    const item = await findItem(decidable, 'review item within authority');
    await armed();
    await dismissNotices();
    await screenshot(browser, 'item');
    // The README's screenshot is refreshed on request only, so a test run leaves the tree clean.
    if (process.env.UPDATE_SCREENSHOTS) {
      mkdirSync(join(ROOT, 'docs/screenshots'), { recursive: true });
      copyFileSync(join(ROOT, 'target/e2e-screenshots/item.png'), join(ROOT, 'docs/screenshots/item.png'));
    }
    await press('a');
    await expectDecided(item, 'approve');
    assert.equal(deskDecisions().length, 1, 'one key press, one decision');
  });

  it('corrects with C in the correction editor', async () => {
    const item = await findItem(decidable, 'review item within authority');
    await armed();
    await press('c');
    const editor = await el('correction-editor');
    await editor.waitForDisplayed();
    const term = await el('field-term_months');
    const current = Number(await term.getValue());
    await term.setValue(String(current === 12 ? 24 : 12));
    await (await el('reason-select')).selectByAttribute('value', 'amount-term-mismatch');
    await (await el('comment')).setValue('Term fits the purpose better');
    assert.match(await text('correction-editor'), /1 field changed/);
    // The screenshot may lag the DOM by a frame or two; give the compositor a moment.
    await sleep(300);
    await screenshot(browser, 'correction-editor');
    await (await el('correction-submit')).click();
    await expectDecided(item, 'correct');
  });

  it('escalates with E, with a reason', async () => {
    const item = await findItem(decidable, 'review item within authority');
    await armed();
    await press('e');
    await (await el('escalate-dialog')).waitForDisplayed();
    // Without a reason the dialog refuses.
    await (await el('escalate-submit')).click();
    await (await el('escalate-error')).waitForDisplayed();
    await (await el('reason-select')).selectByAttribute('value', 'needs-senior-review');
    await (await el('escalate-submit')).click();
    await expectDecided(item, 'escalate');
  });

  it('moves with J and K', async () => {
    const first = await shownItem();
    await armed();
    await press('j');
    await waitUntil('J to show the next item', async () => (await shownItem()).id !== first.id);
    const second = await shownItem();
    const selected = await browser.$(`${tid('queue-row')}[aria-selected="true"]`);
    assert.equal(await selected.getAttribute('data-item-id'), second.id);
    await armed();
    await press('k');
    await waitUntil('K to go back', async () => (await shownItem()).id === first.id);
  });

  it('syncs the decisions to the gate', async () => {
    await press('s');
    await waitUntil('pending decisions to reach the gate', async () => (await pending()) === 0, 30_000);
    const records = deskDecisions();
    assert.equal(records.length, decided.size);
    for (const r of records) assert.equal(r.state, 'applied', JSON.stringify(r));
  });

  it('decides offline while the gate is down and syncs when it is back', async () => {
    await gate.stop();
    const item = await findItem(decidable, 'review item within authority');
    await armed();
    await press('a');
    await expectDecided(item, 'approve');
    assert.equal(await pending(), 1, 'the offline decision waits on this device');
    await press('s');
    await waitUntil('the sync to fail while the gate is down', async () => (await attr('status-online', 'data-online')) === 'false', 30_000);
    assert.equal(await pending(), 1);

    await gate.start();
    await press('s');
    await waitUntil('the offline decision to reach the gate', async () => (await pending()) === 0, 60_000);
    await waitUntil('online again', async () => (await attr('status-online', 'data-online')) === 'true');
  });

  it('the gate applied each decision exactly once', async () => {
    const records = deskDecisions();
    assert.equal(records.length, decided.size);
    const entries = await gate.entries();
    const applied = new Map();
    for (const entry of entries) {
      const d = decisionOf(entry);
      if (!d) continue;
      assert.equal(entry.kind, 'decided', `decision ${d.decision_id} logged as ${entry.kind}`);
      applied.set(d.decision_id, (applied.get(d.decision_id) ?? 0) + 1);
    }
    for (const r of records) {
      assert.equal(r.state, 'applied');
      assert.equal(applied.get(r.decision_id), 1, `decision ${r.decision_id} (${r.kind}) in the gate's log`);
      assert.equal(r.kind, decided.get(r.item_id));
    }
    assert.equal(applied.size, records.length);
  });

  it('shows model text with markup as text and runs none of it', async () => {
    const filter = await el('filter-text');
    await filter.setValue(hostileSubject);
    await waitUntil('the hostile item alone in the queue', async () => (await browser.$$(tid('queue-row'))).length === 1);
    const row = await browser.$(tid('queue-row'));
    await row.click();
    await waitUntil('the hostile item', async () => (await shownItem()).id === (await row.getAttribute('data-item-id')));
    const rationale = await el('rationale');
    await rationale.waitForDisplayed();
    const text = await rationale.getText();
    assert.ok(text.includes('<img src=x onerror="window.__csXss=1">'), text);
    assert.ok(text.includes('<script>window.__csXss=2</script>'), text);
    const injected = await browser.execute(() => ({
      flag: window.__csXss ?? null,
      imgs: document.querySelectorAll('img[src="x"]').length,
      scripts: [...document.scripts].filter((s) => !s.src).length,
    }));
    assert.deepEqual(injected, { flag: null, imgs: 0, scripts: 0 });
    // The whole session ran under the CSP without a single violation.
    assert.deepEqual(await browser.execute(() => window.__cspViolations), []);
    // And the CSP is really in force: an inline script added to the page is blocked and reported.
    await browser.execute(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__csInline = 1';
      document.body.appendChild(s);
    });
    await waitUntil('the CSP to report the inline script', async () =>
      (await browser.execute(() => window.__cspViolations.length)) > 0,
    );
    assert.equal(await browser.execute(() => window.__csInline ?? null), null);
    await dismissNotices();
    await rationale.scrollIntoView();
    await screenshot(browser, 'hostile-item');
  });
});

let hostileSubject;

/** Posts demo-feed outputs rewritten to carry markup under a new subject; returns the subject of
 * the one routed to review (so its rationale is shown). */
async function postHostileOutput() {
  const lines = execFileSync(join(ROOT, 'target/debug/examples/print_outputs'), ['12', 'e2e-xss'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const outputs = lines.map((o, i) => ({
    ...o,
    output_id: `${o.output_id}-xss`,
    subject: `XSS-${String(i + 1).padStart(4, '0')}`,
    evidence: { ...o.evidence, rationale: `${XSS} ${o.evidence.rationale ?? ''}` },
  }));
  const { results } = await gate.post('/v1/outputs', gate.credentials.source_api_key, outputs);
  const review = results.find((r) => r.status === 'accepted' && r.lane === 'review');
  assert.ok(review, `no hostile output was routed to review: ${JSON.stringify(results)}`);
  return outputs[review.position].subject;
}
