import { beforeEach, describe, expect, it, vi } from 'vitest';

const invoke = vi.fn();
const listeners = new Map<string, (e: { payload: unknown }) => void>();

vi.mock('@tauri-apps/api/core', () => ({
  invoke: (...args: unknown[]) => invoke(...args),
  Channel: class<T> {
    onmessage: (m: T) => void = () => undefined;
  },
}));
vi.mock('@tauri-apps/api/event', () => ({
  listen: async (name: string, handler: (e: { payload: unknown }) => void) => {
    listeners.set(name, handler);
    return () => listeners.delete(name);
  },
}));

const backend = await import('../src/lib/backend');
const { explain } = await import('../src/lib/errors');

beforeEach(() => {
  invoke.mockReset();
  listeners.clear();
});

describe('backend module', () => {
  it('calls the shell commands with camelCase arguments', async () => {
    invoke.mockResolvedValue({});
    await backend.enroll('http://127.0.0.1:8443', 'CODE', 'laptop');
    expect(invoke).toHaveBeenLastCalledWith('enroll', { gateUrl: 'http://127.0.0.1:8443', code: 'CODE', deviceName: 'laptop' });
    await backend.enroll('http://127.0.0.1:8443', 'CODE', null);
    expect(invoke).toHaveBeenLastCalledWith('enroll', { gateUrl: 'http://127.0.0.1:8443', code: 'CODE', deviceName: null });
    await backend.item('id-1');
    expect(invoke).toHaveBeenLastCalledWith('item', { itemId: 'id-1' });
    await backend.claim(20, 8);
    expect(invoke).toHaveBeenLastCalledWith('claim', { limit: 20, offlineHours: 8 });
    await backend.claim(20, null);
    expect(invoke).toHaveBeenLastCalledWith('claim', { limit: 20, offlineHours: null });
    const request = { item_id: 'id-1', kind: 'approve' as const, corrections: [], reason_codes: [], comment: null };
    await backend.decide(request);
    expect(invoke).toHaveBeenLastCalledWith('decide', { request });
    await backend.status();
    expect(invoke).toHaveBeenLastCalledWith('status', undefined);
  });

  it('passes sync progress through a channel named onProgress', async () => {
    const seen: unknown[] = [];
    invoke.mockImplementation(async (_cmd: string, args: { onProgress: { onmessage: (m: unknown) => void } }) => {
      args.onProgress.onmessage({ phase: 'push', done: 1, total: 2 });
      args.onProgress.onmessage({ phase: 'push', done: 2, total: 2 });
      return { pushed: 2 };
    });
    const report = await backend.sync((p) => seen.push(p));
    expect(invoke.mock.calls[0]![0]).toBe('sync');
    expect(report).toEqual({ pushed: 2 });
    expect(seen).toEqual([
      { phase: 'push', done: 1, total: 2 },
      { phase: 'push', done: 2, total: 2 },
    ]);
  });

  it('turns the shell’s {code, message} into a DeskFailure', async () => {
    invoke.mockRejectedValue({ code: 'keyring_unavailable', message: 'no Secret Service is running' });
    const error = await backend.enroll('u', 'c', 'd').catch((e) => e);
    expect(error).toBeInstanceOf(backend.DeskFailure);
    expect(error.code).toBe('keyring_unavailable');
    expect(error.message).toBe('no Secret Service is running');
    expect(explain(error).title).toBe('The OS keyring is not available');
  });

  it('maps Tauri’s plain-string and unexpected rejections to internal', async () => {
    invoke.mockRejectedValueOnce('command decide not found');
    let e = await backend.status().catch((x) => x);
    expect([e.code, e.message]).toEqual(['internal', 'command decide not found']);
    invoke.mockRejectedValueOnce(new TypeError('boom'));
    e = await backend.status().catch((x) => x);
    expect([e.code, e.message]).toEqual(['internal', 'boom']);
    invoke.mockRejectedValueOnce(undefined);
    e = await backend.status().catch((x) => x);
    expect(e.code).toBe('internal');
    invoke.mockRejectedValueOnce({ message: 'no code' });
    e = await backend.status().catch((x) => x);
    expect([e.code, e.message]).toEqual(['internal', 'no code']);
  });

  it('explains every error code of the desk, and unknown ones by their code', () => {
    const codes = ['not_enrolled', 'already_enrolled', 'keyring_unavailable', 'keyring_locked', 'gate_unreachable', 'gate_refused', 'invalid_decision', 'not_found', 'already_decided', 'lease_lost', 'log_inconsistent', 'storage', 'invalid_input'];
    for (const code of codes) {
      const e = explain(new backend.DeskFailure(code, 'detail'));
      expect(e.title).not.toMatch(/^Error:/);
      expect(e.detail).toBe('detail');
    }
    expect(explain(new backend.DeskFailure('brand_new', 'x')).title).toBe('Error: brand_new');
  });

  it('reads the background sync-done event as a report or a failure', async () => {
    const results: unknown[] = [];
    await backend.onSyncDone((r) => results.push(r));
    listeners.get('sync-done')!({ payload: { pushed: 1, applied: 1 } });
    listeners.get('sync-done')!({ payload: { code: 'gate_unreachable', message: 'down' } });
    listeners.get('sync-done')!({ payload: { Err: { code: 'log_inconsistent', message: 'fork' } } });
    expect(results[0]).toEqual({ report: { pushed: 1, applied: 1 } });
    expect((results[1] as { failure: { code: string } }).failure.code).toBe('gate_unreachable');
    expect((results[2] as { failure: { code: string } }).failure.code).toBe('log_inconsistent');
  });
});
