// The supervisor mode in the real Countersign Desk window, against a real gate whose log holds
// 3 000 signed decisions of six reviewers over 14 days (seeded by countersign-supervision-bench,
// the same rows and log entries a gate writes), plus decisions a reviewer signs now on her own
// desk (the countersign-desk binary), with a supervisor enrolled by the gate's admin command:
// search decisions, open a verified trail, see the override chart, withdraw the reviewer's lease
// (her desk learns it at its next sync), check the log. Screenshots of the trail and the chart go
// to target/e2e-screenshots/.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { DESK_BIN, Driver, GATE_BIN, Gate, ROOT, freePort, screenshot, sleep, tid, workDir } from '../lib/harness.mjs';

const BENCH_BIN = join(dirname(GATE_BIN), 'countersign-supervision-bench');
const ORIGIN = 'bench.countersign/log';
const SUPERVISOR = 'sue.supervisor';
const REVIEWER = 'rita.reviewer';

let work, gate, driver, browser, ritaDir;
const rita = {}; // what rita decided on her desk: approved and escalated item ids

/** The countersign-desk binary on rita's own data directory. */
function ritaDesk(...args) {
  return execFileSync(DESK_BIN, ['--data-dir', ritaDir, ...args], { encoding: 'utf8' });
}

/** rita enrolls her own desk, claims with an offline lease, approves one item and escalates another. */
async function ritaDecides(code) {
  ritaDesk('enroll', '--gate', gate.url, '--code', code, '--device-name', 'rita laptop');
  ritaDesk('claim', '--limit', '200', '--offline-hours', '8');
  // The demo feed's subjects (APP-000001...), not the seeded ones (APP-0001...), whose stored
  // items carry no reason codes.
  const queue = JSON.parse(ritaDesk('queue', '--json')).filter(
    (e) => e.lane === 'review' && e.amount <= 25000 && /^APP-\d{6}$/.test(e.subject),
  );
  assert.ok(queue.length >= 3, `rita's review items: ${queue.length}`);
  rita.approved = queue[0].item_id;
  rita.escalated = queue[1].item_id;
  ritaDesk('decide', rita.approved, 'approve');
  ritaDesk('decide', rita.escalated, 'escalate', '--reason', 'needs-senior');
  const report = JSON.parse(ritaDesk('sync', '--json'));
  assert.equal(report.applied, 2, JSON.stringify(report));
}

async function waitUntil(what, fn, timeout = 15_000) {
  await browser.waitUntil(fn, { timeout, interval: 50, timeoutMsg: `timed out waiting for ${what}` });
}
const el = (id) => browser.$(tid(id));
const attr = async (id, name) => (await el(id)).getAttribute(name);
const all = (sel) => browser.execute((s) => [...document.querySelectorAll(s)].map((e) => ({ ...e.dataset })), sel);

async function dismissNotices() {
  for (const notice of await browser.$$(tid('supervisor-notice'))) {
    const close = await notice.$('button');
    if (await close.isExisting()) await close.click().catch(() => {});
  }
}

describe('Countersign Desk supervisor mode', () => {
  before(async () => {
    work = workDir();
    gate = new Gate(work, { origin: ORIGIN });
    execFileSync(
      BENCH_BIN,
      ['--decisions', '3000', '--reviewers', '6', '--models', '3', '--days', '14', '--open-leases', '8', '--samples', '1', '--data-dir', gate.dir],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const admin = (...args) => execFileSync(GATE_BIN, [...args, '--data-dir', gate.dir, '--origin', ORIGIN], { encoding: 'utf8' });
    const code = (out) => {
      const found = /enrollment code: (\S+)/.exec(out)?.[1];
      assert.ok(found, out);
      return found;
    };
    gate.supervisorCode = code(admin('user', 'create', SUPERVISOR, '--role', 'supervisor'));
    const ritaCode = code(admin('user', 'create', REVIEWER, '--role', 'reviewer', '--authority', '25000'));
    const sourceKey = admin('apikey', 'create', 'source', 'credit-scoring').trim();
    // The bench's policy, with a circuit breaker that the seeded override rates (about 12 to 14 %)
    // exceed: the gate trips it for a version at the next human decision on it (rita's).
    const policy = join(work, 'policy.toml');
    writeFileSync(
      policy,
      readFileSync(join(ROOT, 'examples/policy/test.toml'), 'utf8').replace(/^version = 1$/m, 'version = 2') +
        '\n[circuit_breaker]\nwindow = 200\nthreshold = 0.1\nmin_decisions = 50\n',
    );
    execFileSync(GATE_BIN, ['policy', 'activate', policy, '--data-dir', gate.dir, '--origin', ORIGIN], { stdio: ['ignore', 'ignore', 'inherit'] });
    gate.port = await freePort();
    gate.url = `http://127.0.0.1:${gate.port}`;
    await gate.start();
    // Fresh model outputs from the demo feed, for rita to decide on her desk.
    const outputs = execFileSync(join(ROOT, 'target/debug/examples/print_outputs'), ['40', 'e2e-sv'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    await gate.post('/v1/outputs', sourceKey, outputs);
    ritaDir = join(work, 'rita');
    await ritaDecides(ritaCode);
    driver = new Driver();
    await driver.start({ COUNTERSIGN_DESK_DIR: join(work, 'desk') });
    browser = await driver.session();
  });

  after(async () => {
    await browser?.deleteSession().catch(() => {});
    await driver?.stop();
    await gate?.stop();
    if (process.env.E2E_KEEP) console.log(`e2e: data kept in ${work}`);
    else if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a supervisor enrolls and the window opens in the supervisor mode', async () => {
    await (await el('first-run')).waitForDisplayed({ timeout: 20_000 });
    await (await el('gate-url')).setValue(gate.url);
    await (await el('enroll-code')).setValue(gate.supervisorCode);
    await (await el('enroll-submit')).click();
    await (await el('supervisor-view')).waitForDisplayed({ timeout: 20_000 });
    // The desk's first sync ends a moment after enrollment; the status bar shows it at once,
    // not at the next status poll (5 s).
    await waitUntil('online in the status bar within 2 s of enrollment', async () => (await attr('status-online', 'data-online')) === 'true', 2_000);
    assert.doesNotMatch(await (await el('status-last-sync')).getText(), /never/);
    assert.equal(await attr('mode-supervise', 'aria-pressed'), 'true');
    // Its code came as a chunk of its own (a reviewer's window never loads it: desk.test.mjs).
    const assets = await browser.execute(() => [...document.querySelectorAll('link[href]')].map((e) => e.getAttribute('href')));
    assert.ok(assets.some((a) => a.includes('SupervisorView')), assets.join(' '));
    // The newest decisions are listed at once.
    await waitUntil('decisions listed', async () => (await browser.$$(tid('decision-row'))).length === 50);
  });

  it('finds the decisions a reviewer signed on her desk', async () => {
    await (await el('search-reviewer')).setValue(REVIEWER);
    await (await el('search-submit')).click();
    await waitUntil(`${REVIEWER}'s two decisions`, async () => {
      const rows = await all(tid('decision-row'));
      return rows.length === 2 && rows.every((r) => r.reviewer === REVIEWER);
    });
    const rows = await all(tid('decision-row'));
    assert.deepEqual(
      Object.fromEntries(rows.map((r) => [r.itemId, r.kind])),
      { [rita.approved]: 'approve', [rita.escalated]: 'escalate' },
    );
  });

  it('opens the trail of her approval, verified on the desk', async () => {
    await (await browser.$(`${tid('decision-row')}[data-item-id="${rita.approved}"] ${tid('open-trail')}`)).click();
    await waitUntil('the trail to be verified', async () => (await attr('trail-view', 'data-verified')) !== '', 20_000);
    assert.equal(await attr('trail-view', 'data-verified'), 'true');
    const steps = await all(tid('trail-step'));
    assert.ok(steps.every((s) => s.verified === 'true'), JSON.stringify(steps));
    // The output as received, its routing, rita's lease, her signed decision and the release.
    const stages = steps.map((s) => s.stage);
    for (const stage of ['output', 'routing', 'lease', 'decision', 'release']) assert.ok(stages.includes(stage), stages.join(' '));
    assert.equal((await all(`${tid('inclusion-mark')}[data-ok="true"]`)).length, steps.length);
    const signatures = await all(tid('signature-mark'));
    assert.equal(signatures.length, 1);
    assert.equal(signatures[0].ok, 'true');
    await (await browser.$(`${tid('trail-step')}[data-stage="decision"] summary`)).click();
    await sleep(300);
    await screenshot(browser, 'supervisor-trail');
    await browser.keys('Escape');
    await (await el('decision-results')).waitForDisplayed();
  });

  it('searches decisions by reviewer and kind', async () => {
    await (await el('search-reviewer')).setValue('reviewer-001');
    await (await el('search-kind')).selectByAttribute('value', 'correct');
    await (await el('search-submit')).click();
    await waitUntil('only reviewer-001’s corrections', async () => {
      const rows = await all(tid('decision-row'));
      return rows.length > 0 && rows.every((r) => r.reviewer === 'reviewer-001' && r.kind === 'correct');
    });
    await screenshot(browser, 'supervisor-decisions');
  });

  it('opens the trail of a seeded correction, verified on the desk', async () => {
    const first = await browser.$(tid('decision-row'));
    const item = await first.getAttribute('data-item-id');
    await (await first.$(tid('open-trail'))).click();
    await waitUntil('the trail to be verified', async () => (await attr('trail-view', 'data-verified')) !== '', 20_000);
    assert.equal(await attr('trail-view', 'data-verified'), 'true');
    const steps = await all(tid('trail-step'));
    assert.ok(steps.length >= 3, `${steps.length} steps`);
    assert.ok(steps.every((s) => s.verified === 'true'), JSON.stringify(steps));
    assert.deepEqual(steps.map((s) => s.stage).slice(0, 2), ['output', 'routing']);
    // Each step names its log entry, in log order, and has its inclusion mark.
    const indices = steps.map((s) => Number(s.index));
    assert.deepEqual([...indices].sort((a, b) => a - b), indices);
    const inclusion = await all(`${tid('inclusion-mark')}[data-ok="true"]`);
    assert.equal(inclusion.length, steps.length);
    const signatures = await all(tid('signature-mark'));
    assert.ok(signatures.length >= 1 && signatures.every((s) => s.ok === 'true'), JSON.stringify(signatures));
    assert.match(await (await el('trail-verdict')).getText(), /Verified on this desk/);
    assert.ok(item);

    await browser.keys('Escape');
    await (await el('decision-results')).waitForDisplayed();
  });

  it('shows each reviewer’s figures', async () => {
    await (await el('tab-reviewers')).click();
    await waitUntil('the reviewer table', async () => (await browser.$$(tid('reviewer-row'))).length === 7, 20_000);
    const names = (await all(tid('reviewer-row'))).map((r) => r.reviewer).sort();
    assert.deepEqual(names, [...[0, 1, 2, 3, 4, 5].map((i) => `reviewer-00${i}`), REVIEWER].sort());
    await sleep(200);
    await screenshot(browser, 'supervisor-reviewers');
  });

  it('shows the override rate of each model version over time', async () => {
    await (await el('tab-models')).click();
    await waitUntil('the override chart', async () => (await browser.$$(tid('override-chart'))).length === 1, 20_000);
    // The three seeded versions, and any other version of the demo feed rita decided on.
    assert.ok(Number(await attr('override-chart', 'data-series')) >= 3);
    assert.ok(Number(await attr('override-chart', 'data-points')) >= 10);
    assert.ok((await all(tid('model-row'))).length >= 3);
    assert.match(await (await el('breaker-config')).getText(), /more than 10 % of its last 200/);
    // The gate folds rita's decisions off the decision path and trips the breaker of their model
    // versions a moment later; the view shows it once reloaded.
    await waitUntil('a tripped breaker', async () => {
      if ((await all(`${tid('model-row')}[data-breaker="tripped"]`)).length > 0) return true;
      await (await el('models-show')).click();
      await sleep(500);
      return false;
    }, 20_000);
    await (await el('corrected-fields')).waitForDisplayed();
    await sleep(300);
    await screenshot(browser, 'supervisor-override-chart');
  });

  it('resets a tripped circuit breaker, with a reason', async () => {
    const [tripped] = await all(`${tid('model-row')}[data-breaker="tripped"]`);
    const row = `${tid('model-row')}[data-model="${tripped.model}"]`;
    await (await browser.$(`${row} ${tid('reset-breaker')}`)).click();
    await (await el('action-dialog')).waitForDisplayed();
    await (await el('action-submit')).click();
    await (await el('action-error')).waitForDisplayed();
    await (await el('action-text')).setValue('override rate checked by hand: data drift fixed');
    await (await el('action-submit')).click();
    await waitUntil('the breaker closed again', async () => (await browser.$(row).getAttribute('data-breaker')) === 'closed', 15_000);
    await dismissNotices();
  });

  it('switches to the review queue and back, where it left off', async () => {
    await (await el('mode-review')).click();
    await (await el('item-none')).waitForDisplayed();
    assert.equal((await browser.$$(tid('supervisor-view'))).length, 0);
    await (await el('mode-supervise')).click();
    await (await el('model-table')).waitForDisplayed();
    assert.equal(await attr('tab-models', 'aria-selected'), 'true');
  });

  it('withdraws an open lease, with a reason, and the reviewer’s desk learns it', async () => {
    await (await el('tab-leases')).click();
    await waitUntil('open leases', async () => (await browser.$$(tid('lease-row'))).length > 0, 20_000);
    const before = await all(tid('lease-row'));
    const ritas = before.filter((l) => l.reviewer === REVIEWER);
    assert.ok(ritas.length > 0 && ritas.every((l) => l.offline === 'true'), JSON.stringify(ritas));
    const target = ritas[0].leaseId;
    await (await browser.$(`${tid('lease-row')}[data-lease-id="${target}"] ${tid('withdraw')}`)).click();
    await (await el('action-dialog')).waitForDisplayed();
    // No reason, no withdrawal.
    await (await el('action-submit')).click();
    await (await el('action-error')).waitForDisplayed();
    await (await el('action-text')).setValue('reviewer away this week');
    await (await el('action-submit')).click();
    await waitUntil('the lease to leave the list', async () => (await all(tid('lease-row'))).every((l) => l.leaseId !== target));
    // The gate agrees: refreshed from it, the lease is gone and the others are still there.
    await dismissNotices();
    await (await el('leases-refresh')).click();
    await sleep(500);
    await waitUntil('the refreshed leases', async () => (await all(tid('lease-row'))).length === before.length - 1);
    assert.ok((await all(tid('lease-row'))).every((l) => l.leaseId !== target));
    await screenshot(browser, 'supervisor-leases');
    // rita's desk, offline meanwhile, hears of it at its next sync.
    const report = JSON.parse(ritaDesk('sync', '--json'));
    assert.equal(report.withdrawn, 1, JSON.stringify(report));
  });

  it('checks the whole log from the desk', async () => {
    await (await el('tab-integrity')).click();
    await (await el('log-check')).click();
    await waitUntil('the log check', async () => (await browser.$$(tid('log-check-result'))).length === 1, 30_000);
    assert.equal(await attr('log-check-result', 'data-ok'), 'true');
  });

  it('exports the audit bundle of the last days, verified', async () => {
    const into = join(work, 'bundles');
    mkdirSync(into);
    await (await el('bundle-dir')).setValue(into);
    await (await el('bundle-export')).click();
    await waitUntil('the bundle', async () => (await browser.$$(`${tid('bundle-result')}, ${tid('bundle-failure')}`)).length === 1, 30_000);
    const failure = await browser.$$(tid('bundle-failure'));
    assert.equal(failure.length, 0, failure.length ? await failure[0].getText() : '');
    const written = readdirSync(into);
    assert.equal(written.length, 1, written.join(' '));
    assert.ok((await (await el('bundle-result')).getText()).includes(join(into, written[0])));
    await screenshot(browser, 'supervisor-log-check');
  });
});
