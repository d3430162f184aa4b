// The supervisor mode in the real Countersign Desk window, against a real gate whose log holds
// 3 000 signed decisions of six reviewers over 14 days (seeded by countersign-supervision-bench,
// the same rows and log entries a gate writes), with a supervisor enrolled by the gate's admin
// command: search decisions, open a verified trail, see the override chart, withdraw a lease,
// check the log. Screenshots of the trail and the chart go to target/e2e-screenshots/.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { Driver, GATE_BIN, Gate, ROOT, freePort, screenshot, sleep, tid, workDir } from '../lib/harness.mjs';

const BENCH_BIN = join(dirname(GATE_BIN), 'countersign-supervision-bench');
const ORIGIN = 'bench.countersign/log';
const SUPERVISOR = 'sue.supervisor';

let work, gate, driver, browser;

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
    const created = execFileSync(GATE_BIN, ['user', 'create', SUPERVISOR, '--role', 'supervisor', '--data-dir', gate.dir, '--origin', ORIGIN], {
      encoding: 'utf8',
    });
    gate.supervisorCode = /enrollment code: (\S+)/.exec(created)?.[1];
    assert.ok(gate.supervisorCode, created);
    // The bench's policy, with a circuit breaker (none of the seeded versions is over it).
    const policy = join(work, 'policy.toml');
    writeFileSync(
      policy,
      readFileSync(join(ROOT, 'examples/policy/test.toml'), 'utf8').replace(/^version = 1$/m, 'version = 2') +
        '\n[circuit_breaker]\nwindow = 200\nthreshold = 0.25\nmin_decisions = 50\n',
    );
    execFileSync(GATE_BIN, ['policy', 'activate', policy, '--data-dir', gate.dir, '--origin', ORIGIN], { stdio: ['ignore', 'ignore', 'inherit'] });
    gate.port = await freePort();
    gate.url = `http://127.0.0.1:${gate.port}`;
    await gate.start();
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
    assert.equal(await attr('mode-supervise', 'aria-pressed'), 'true');
    // Its code came as a chunk of its own (a reviewer's window never loads it: desk.test.mjs).
    const assets = await browser.execute(() => [...document.querySelectorAll('link[href]')].map((e) => e.getAttribute('href')));
    assert.ok(assets.some((a) => a.includes('SupervisorView')), assets.join(' '));
    // The newest decisions are listed at once.
    await waitUntil('decisions listed', async () => (await browser.$$(tid('decision-row'))).length === 50);
    // The status bar is the reviewer mode's: the supervisor's desk synced with the gate.
    await waitUntil('online in the status bar', async () => (await attr('status-online', 'data-online')) === 'true', 15_000);
  });

  it('searches decisions by reviewer and kind', async () => {
    await (await el('search-reviewer')).setValue('reviewer-001');
    await (await el('search-kind')).selectByAttribute('value', 'correct');
    await (await el('search-submit')).click();
    await waitUntil('only reviewer-001’s corrections', async () => {
      const rows = await all(tid('decision-row'));
      return rows.length > 0 && rows.every((r) => r.reviewer === 'reviewer-001' && r.kind === 'correct');
    });
  });

  it('opens a decision trail verified on the desk', async () => {
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
    // The signed decision as the desk decoded it, for the screenshot.
    await (await browser.$(`${tid('trail-step')}[data-stage="decision"] summary`)).click();
    await sleep(300);
    await screenshot(browser, 'supervisor-trail');
    await browser.keys('Escape');
    await (await el('decision-results')).waitForDisplayed();
  });

  it('shows the override rate of each model version over time', async () => {
    await (await el('tab-models')).click();
    await waitUntil('the override chart', async () => (await browser.$$(tid('override-chart'))).length === 1, 20_000);
    assert.equal(await attr('override-chart', 'data-series'), '3');
    assert.ok(Number(await attr('override-chart', 'data-points')) >= 10);
    const models = await all(tid('model-row'));
    assert.equal(models.length, 3, JSON.stringify(models));
    assert.ok(models.every((m) => m.breaker === 'closed'), JSON.stringify(models));
    assert.match(await (await el('breaker-config')).getText(), /more than 25 % of its last 200/);
    await (await el('corrected-fields')).waitForDisplayed();
    await sleep(300);
    await screenshot(browser, 'supervisor-override-chart');
  });

  it('withdraws an open lease, with a reason', async () => {
    await (await el('tab-leases')).click();
    await waitUntil('open leases', async () => (await browser.$$(tid('lease-row'))).length > 0, 20_000);
    const before = await all(tid('lease-row'));
    const target = before[0].leaseId;
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
  });

  it('checks the whole log from the desk', async () => {
    await (await el('tab-integrity')).click();
    await (await el('log-check')).click();
    await waitUntil('the log check', async () => (await browser.$$(tid('log-check-result'))).length === 1, 30_000);
    assert.equal(await attr('log-check-result', 'data-ok'), 'true');
  });
});
