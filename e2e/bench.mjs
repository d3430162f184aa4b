// Figures measured in the real Countersign Desk window (run by `make bench-app`, i.e.
// `scripts/e2e.sh bench`, under Xvfb): cold start to an interactive queue, keystroke to the next
// item painted, and memory of the app with its WebKit processes, with 10 000 items cached.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';

import { APP_BIN, DESK_BIN, Driver, Gate, ROOT, sleep, tid, workDir } from './lib/harness.mjs';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 10_000);
const STARTS = Number(process.env.BENCH_STARTS ?? 5);
const NAV_KEYS = 300;
const DECISIONS = 60;
const REVIEWER = 'sam.senior'; // authority 100 000: may claim every demo item
// WebKitGTK's own browser (package libwebkit2gtk-4.1-0): what any app on this WebKitGTK costs.
const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const round = (x) => Math.round(x * 10) / 10;

async function seedItems(gate, work) {
  const lines = execFileSync(join(ROOT, 'target/debug/examples/print_outputs'), ['1000', 'bench'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  let held = 0;
  // Distinct subjects, so no output supersedes another; about 60% of outputs are held.
  for (let copy = 0; held < ITEMS; copy++) {
    for (let i = 0; i < lines.length && held < ITEMS; i += 250) {
      const batch = lines.slice(i, i + 250).map((o) => ({
        ...o,
        output_id: `${o.output_id}-b${copy}`,
        subject: `${o.subject}-${copy}`,
      }));
      const { results } = await gate.post('/v1/outputs', gate.credentials.source_api_key, batch);
      held += results.filter((r) => r.status === 'accepted' && r.lane !== 'auto').length;
    }
  }
  const deskDir = join(work, 'desk');
  execFileSync(DESK_BIN, ['--data-dir', deskDir, 'enroll', '--gate', gate.url, '--code', gate.code(REVIEWER)], {
    stdio: 'ignore',
  });
  let claimed = 0;
  while (claimed < ITEMS) {
    const out = execFileSync(
      DESK_BIN,
      ['--data-dir', deskDir, 'claim', '--limit', String(Math.min(500, ITEMS - claimed)), '--offline-hours', '72'],
      { encoding: 'utf8' },
    );
    const n = Number(/(\d+)/.exec(out)?.[1] ?? 0);
    if (n === 0) break;
    claimed += n;
  }
  const queued = JSON.parse(execFileSync(DESK_BIN, ['--data-dir', deskDir, 'queue', '--json'], { encoding: 'utf8', maxBuffer: 256 << 20 }));
  return { deskDir, cached: queued.length };
}

/** pids of the processes running `rootExe` and every process under them (WebKit's web and
 * network processes). */
function processTree(rootExe = APP_BIN) {
  const parent = new Map();
  const exe = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      exe.set(Number(name), readlinkSync(`/proc/${name}/exe`));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  const roots = [...exe].filter(([, e]) => e === rootExe).map(([p]) => p);
  const all = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (all.has(ppid) && !all.has(pid)) {
        all.add(pid);
        grew = true;
      }
    }
  }
  return [...all].map((pid) => ({ pid, exe: exe.get(pid) }));
}

/** Ends the app processes a closed session left behind, so each start is a cold one. */
async function stopApps() {
  for (let i = 0; i < 50; i++) {
    const apps = processTree().filter((p) => p.exe === APP_BIN);
    if (apps.length === 0) return;
    for (const { pid } of apps) {
      try {
        process.kill(pid, i < 30 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(100);
  }
  throw new Error('the app did not exit');
}

function memoryKb(pid) {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
  return { rss: field('Rss'), pss: field('Pss') };
}

/** RSS and PSS sums of `procs`, with a line per process. With `BENCH_SMAPS_DIR` set, each
 * process's whole /proc/PID/smaps is saved there too, to see which mappings hold the memory. */
function memoryOf(procs, label) {
  const smapsDir = process.env.BENCH_SMAPS_DIR;
  if (smapsDir) {
    mkdirSync(smapsDir, { recursive: true });
    for (const { pid, exe } of procs) {
      writeFileSync(join(smapsDir, `${label}.${exe.split('/').pop()}.smaps`), readFileSync(`/proc/${pid}/smaps`));
    }
  }
  const mem = procs.map((p) => ({ ...p, ...memoryKb(p.pid) }));
  return {
    rss_sum: round(mem.reduce((s, m) => s + m.rss, 0) / 1024),
    pss_sum: round(mem.reduce((s, m) => s + m.pss, 0) / 1024),
    processes: mem.map((m) => `${m.exe.split('/').pop()} rss ${round(m.rss / 1024)} MB pss ${round(m.pss / 1024)} MB`),
  };
}

/**
 * The memory floor under the app: WebKitGTK's MiniBrowser showing one static paragraph, painted
 * on the CPU as the app is, on the same display and at the same moment of the run. Whatever the
 * app does, its total cannot go below this.
 */
async function webkitFloor(work) {
  if (!existsSync(MINIBROWSER)) return { skipped: `${MINIBROWSER} is not installed` };
  const page = join(work, 'floor.html');
  writeFileSync(page, '<!doctype html><meta charset="utf-8"><title>floor</title><p>Countersign</p>');
  const browser = spawn(MINIBROWSER, [`file://${page}`], {
    env: { ...process.env, WEBKIT_DISABLE_COMPOSITING_MODE: '1' },
    stdio: 'ignore',
  });
  try {
    // Until its web and network processes are up and the page is drawn, then as long again.
    for (let i = 0; i < 100 && processTree(MINIBROWSER).length < 3; i++) await sleep(100);
    await sleep(5000);
    return memoryOf(processTree(MINIBROWSER), 'floor');
  } finally {
    browser.kill('SIGKILL');
  }
}

async function main() {
  // Figures from a busy machine are not comparable: the load goes into the result.
  const loadBefore = loadavg().map(round);
  const work = workDir();
  const gate = new Gate(work);
  await gate.seed(10);
  await gate.start();
  const t0 = Date.now();
  const { deskDir, cached } = await seedItems(gate, work);
  console.log(`bench: ${cached} items cached in the desk (seeded in ${Math.round((Date.now() - t0) / 1000)} s)`);

  const driver = new Driver();
  await driver.start({ COUNTERSIGN_DESK_DIR: deskDir });
  const starts = [];
  let browser;
  for (let i = 0; i < STARTS; i++) {
    const requested = Date.now();
    browser = await driver.session();
    await browser.waitUntil(
      async () => (await browser.execute(() => window.countersignPerf?.queueInteractiveAt ?? null)) !== null,
      { timeout: 30_000, interval: 20 },
    );
    const page = await browser.execute(() => ({
      origin: performance.timeOrigin,
      interactive: window.countersignPerf.queueInteractiveAt,
    }));
    starts.push({
      launchToQueue: page.origin + page.interactive - requested,
      pageToQueue: page.interactive,
    });
    if (i < STARTS - 1) {
      await browser.deleteSession();
      await stopApps();
    }
  }

  globalThis.benchBrowser = browser;
  const total = Number(await browser.$(tid('count-total')).getAttribute('data-count'));
  // Keystroke to next item painted: J through the queue.
  await browser.execute(() => {
    window.countersignPerf.keyToPaint.length = 0;
    window.countersignPerf.keyToDom.length = 0;
  });
  for (let i = 0; i < NAV_KEYS; i++) {
    await browser.keys('j');
  }
  await sleep(500);
  const nav = await browser.execute(() => [...window.countersignPerf.keyToPaint]);
  const navDom = await browser.execute(() => [...window.countersignPerf.keyToDom]);

  // And after a decision: approve review items one after another.
  await browser.$(tid('filter-lane')).selectByAttribute('value', 'review');
  await sleep(300);
  await browser.execute(() => {
    window.countersignPerf.keyToPaint.length = 0;
    window.countersignPerf.keyToDom.length = 0;
    window.countersignPerf.save.length = 0;
  });
  for (let i = 0; i < DECISIONS; i++) {
    await browser.waitUntil(
      async () => (await browser.$(tid('item-view')).getAttribute('data-armed')) === 'true',
      { timeout: 60_000, interval: 10 },
    );
    const before = await browser.$(tid('item-view')).getAttribute('data-item-id');
    await browser.keys('a');
    await browser.waitUntil(
      async () => (await browser.$(tid('item-view')).getAttribute('data-item-id')) !== before,
      { timeout: 60_000, interval: 10 },
    );
  }
  await sleep(500);
  const decide = await browser.execute(() => [...window.countersignPerf.keyToPaint]);
  const decideDom = await browser.execute(() => [...window.countersignPerf.keyToDom]);
  // How long each approval took to be signed and saved, behind the next item already painted.
  const saves = await browser.execute(() => [...window.countersignPerf.save]);

  await sleep(2000);
  const memory = memoryOf(processTree(), 'app');

  await browser.deleteSession().catch(() => {});
  await driver.stop();
  await gate.stop();
  // The floor's PSS would share its libraries with an app still exiting.
  await stopApps();
  const floor = await webkitFloor(work);
  rmSync(work, { recursive: true, force: true });

  const result = {
    items_cached: cached,
    queue_total_shown: total,
    cold_start_ms: {
      launch_to_interactive_queue_median: round(pct(starts.map((s) => s.launchToQueue), 50)),
      launch_to_interactive_queue_max: round(Math.max(...starts.map((s) => s.launchToQueue))),
      page_to_interactive_queue_median: round(pct(starts.map((s) => s.pageToQueue), 50)),
      runs: starts.length,
    },
    key_to_next_item_painted_ms: {
      navigate_j: { samples: nav.length, p50: round(pct(nav, 50)), p95: round(pct(nav, 95)), max: round(Math.max(...nav)) },
      approve_a: { samples: decide.length, p50: round(pct(decide, 50)), p95: round(pct(decide, 95)), max: round(Math.max(...decide)) },
    },
    // The part of the above until the new item's DOM was updated (the rest is layout and paint).
    key_to_next_item_dom_ms: {
      navigate_j: { p50: round(pct(navDom, 50)), p95: round(pct(navDom, 95)) },
      approve_a: { p50: round(pct(decideDom, 50)), p95: round(pct(decideDom, 95)) },
    },
    approve_saved_ms: { samples: saves.length, p50: round(pct(saves, 50)), p95: round(pct(saves, 95)), max: round(Math.max(...saves)) },
    memory_mb: memory,
    webkit_minibrowser_floor_mb: floor,
    load_average: { before: loadBefore, after: loadavg().map(round) },
  };
  mkdirSync(join(ROOT, 'target'), { recursive: true });
  writeFileSync(join(ROOT, 'target/bench-app.json'), JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result, null, 2));
}

main().catch(async (e) => {
  if (globalThis.benchBrowser) {
    await globalThis.benchBrowser.saveScreenshot(join(ROOT, 'target/bench-app-failure.png')).catch(() => {});
  }
  console.error(`bench: ${e.stack ?? e}`);
  process.exit(1);
});
