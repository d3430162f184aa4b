import { afterEach, describe, expect, it, vi } from 'vitest';

// The status bar's state right after enrollment, against a fake shell that behaves like the real
// one: `enroll` starts the new account's background sync, which ends (and sends `sync-done`)
// while the window is still busy with enrollment's answer; registering a listener takes an IPC
// round trip, and an event sent before it is registered is lost.
type Handler = (event: { payload: unknown }) => void;
const handlers = new Map<string, Handler[]>();
const LISTEN_MS = 20;
vi.mock('@tauri-apps/api/event', () => ({
  listen: (name: string, handler: Handler) =>
    new Promise((resolve) =>
      setTimeout(() => {
        handlers.set(name, [...(handlers.get(name) ?? []), handler]);
        resolve(() => handlers.set(name, (handlers.get(name) ?? []).filter((h) => h !== handler)));
      }, LISTEN_MS),
    ),
}));
function emit(name: string, payload: unknown) {
  for (const h of handlers.get(name) ?? []) h({ payload });
}

const shell = { enrolled: false, synced: false, statusCalls: 0 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const report = { applied: 0, conflicts: 0, rejected: 0, refused: 0, pulled: 0, withdrawn: 0, superseded: 0 };

async function invoke(cmd: string): Promise<unknown> {
  if (!shell.enrolled && cmd !== 'enroll') throw { code: 'not_enrolled', message: 'no account' };
  switch (cmd) {
    case 'enroll':
      shell.enrolled = true;
      // The first round of the background sync: it ends a moment after enrollment answers.
      setTimeout(() => {
        shell.synced = true;
        emit('sync-done', { Ok: report });
      }, 5);
      return { account_id: 'sue', role: 'supervisor' };
    case 'status': {
      // Read when asked; the first answer after enrollment is the slowest to come back.
      const snapshot = {
        account: { user_name: 'sue', role: 'supervisor' },
        online: shell.synced,
        queue_count: 0,
        pending_sync: 0,
        conflicts: 0,
        last_sync_at: shell.synced ? '2026-12-01T13:00:00Z' : null,
        last_error: null,
        checkpoint: null,
      };
      shell.statusCalls += 1;
      await sleep(shell.statusCalls === 1 ? 40 : 1);
      return snapshot;
    }
    case 'queue':
      return [];
    default:
      throw { code: 'not_found', message: cmd };
  }
}
vi.mock('@tauri-apps/api/core', () => ({
  invoke: (cmd: string) => invoke(cmd),
  Channel: class {
    onmessage: (m: unknown) => void = () => undefined;
  },
}));

const { DeskState } = await import('../src/lib/desk.svelte');

let desk: InstanceType<typeof DeskState> | null = null;
afterEach(() => {
  desk?.stop();
  handlers.clear();
  Object.assign(shell, { enrolled: false, synced: false, statusCalls: 0 });
});

describe('the status after enrollment', () => {
  it('shows the first sync as soon as it ends, not at the next poll', async () => {
    desk = new DeskState();
    await desk.start();
    expect(desk.phase).toBe('first-run');
    await desk.enroll('http://gate', 'code', '');
    expect(desk.phase).toBe('ready');
    // The poll comes every 5 s; the sync's end must show well before.
    await vi.waitFor(() => expect(desk!.status?.online).toBe(true), { timeout: 1000 });
    expect(desk.status?.last_sync_at).not.toBeNull();
    // An older answer arriving late does not put "never synced" back.
    await sleep(100);
    expect(desk.status?.online).toBe(true);
    expect(desk.status?.last_sync_at).not.toBeNull();
  });
});
