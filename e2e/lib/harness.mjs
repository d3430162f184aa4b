// Real parts for the end-to-end tests: a countersign-gate process on its own SQLite directory,
// tauri-driver (which starts WebKitWebDriver, which starts the app), and a WebdriverIO session on
// the real window. scripts/e2e.sh builds the binaries and runs this under Xvfb, inside a D-Bus
// session with an unlocked gnome-keyring.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { remote } from 'webdriverio';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.COUNTERSIGN_BIN_DIR ?? join(ROOT, 'target/debug');
export const GATE_BIN = join(BIN, 'countersign-gate');
export const DESK_BIN = join(BIN, 'countersign-desk');
export const APP_BIN = join(BIN, 'countersign-desk-app');
export const SCREENSHOTS = join(ROOT, 'target/e2e-screenshots');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

async function waitFor(what, probe, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  let last;
  while (Date.now() < until) {
    try {
      if (await probe()) return;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** A gate seeded with the German-credit demo; stop() and start() keep its database and port. */
export class Gate {
  /** `origin`: the log's origin line, for a gate whose log was created with another one. */
  constructor(work, { origin } = {}) {
    this.origin = origin;
    this.dir = join(work, 'gate');
    this.logFile = join(work, 'gate.log');
    this.credentialsFile = join(work, 'credentials.json');
    this.proc = null;
  }

  async seed(outputs) {
    mkdirSync(this.dir, { recursive: true });
    execFileSync(
      GATE_BIN,
      ['--data-dir', this.dir, 'demo', '--outputs', String(outputs), '--credentials', this.credentialsFile],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    this.credentials = JSON.parse(readFileSync(this.credentialsFile, 'utf8'));
    this.port ??= await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const log = openSync(this.logFile, 'a');
    const origin = this.origin ? ['--origin', this.origin] : [];
    this.proc = spawn(GATE_BIN, ['--data-dir', this.dir, 'serve', ...origin, '--listen', `127.0.0.1:${this.port}`], {
      stdio: ['ignore', log, log],
    });
    await waitFor('the gate to answer /readyz', async () => (await fetch(`${this.url}/readyz`)).ok);
  }

  async stop() {
    if (!this.proc) return;
    const proc = this.proc;
    this.proc = null;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000).then(() => proc.kill('SIGKILL'))]);
    await exited;
  }

  code(user) {
    return this.credentials.users[user].enrollment_code;
  }

  async post(path, token, body) {
    const resp = await fetch(`${this.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    const json = await resp.json();
    if (!resp.ok) throw new Error(`${path}: ${resp.status} ${JSON.stringify(json)}`);
    return json;
  }

  /** Every audit-log entry, oldest first. */
  async entries() {
    const all = [];
    for (;;) {
      const resp = await fetch(`${this.url}/v1/log/entries?start=${all.length}&limit=1000`);
      if (!resp.ok) throw new Error(`log entries: ${resp.status}`);
      const { entries } = await resp.json();
      all.push(...entries.map((e) => e.entry));
      if (entries.length < 1000) return all;
    }
  }
}

/** The decision inside a log entry's compact JWS (payload = the decision's canonical JSON). */
export function decisionOf(entry) {
  const jws = entry?.data?.jws;
  if (typeof jws !== 'string') return null;
  const payload = jws.split('.')[1];
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

/** tauri-driver on a free port, with the app's environment (its data directory). */
export class Driver {
  async start(env) {
    this.port = await freePort();
    const nativePort = await freePort();
    this.output = '';
    this.proc = spawn(
      process.env.TAURI_DRIVER ?? join(process.env.HOME, '.cargo/bin/tauri-driver'),
      ['--port', String(this.port), '--native-port', String(nativePort)],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc.stdout.on('data', (d) => (this.output += d));
    this.proc.stderr.on('data', (d) => (this.output += d));
    await waitFor('tauri-driver to listen', async () => {
      const r = await fetch(`http://127.0.0.1:${this.port}/status`);
      return r.status < 500;
    });
  }

  async session() {
    return remote({
      hostname: '127.0.0.1',
      port: this.port,
      logLevel: 'error',
      connectionRetryCount: 0,
      capabilities: {
        // No browserName: WebdriverIO would then ask for BiDi, which WebKitWebDriver lacks.
        'wdio:enforceWebDriverClassic': true,
        'tauri:options': { application: APP_BIN },
      },
    });
  }

  async stop() {
    if (!this.proc) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    this.proc = null;
  }
}

export function workDir() {
  return mkdtempSync(join(tmpdir(), 'countersign-e2e-'));
}

/** Element by the UI's data-testid (see ui/README.md). */
export const tid = (id) => `[data-testid="${id}"]`;

export async function screenshot(browser, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = join(SCREENSHOTS, `${name}.png`);
  await browser.saveScreenshot(file);
  return file;
}

export function writeJson(file, value) {
  writeFileSync(file, JSON.stringify(value, null, 2));
}
