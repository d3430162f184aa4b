import { describe, expect, it } from 'vitest';
import { DecisionGuard } from '../src/lib/guard';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('double-press guard', () => {
  it('runs one decision when the key is pressed twice while the first is in flight', async () => {
    const guard = new DecisionGuard();
    const d = deferred<string>();
    let calls = 0;
    const work = () => {
      calls += 1;
      return d.promise;
    };
    const first = guard.run('item@1', work);
    const second = guard.run('item@1', work);
    expect(guard.isBusy('item@1')).toBe(true);
    expect(await second).toEqual({ ran: false });
    d.resolve('saved');
    expect(await first).toEqual({ ran: true, value: 'saved' });
    expect(calls).toBe(1);
    expect(guard.isBusy('item@1')).toBe(false);
  });

  it('refuses a second decision after the first was saved', async () => {
    const guard = new DecisionGuard();
    let calls = 0;
    await guard.run('item@1', async () => ++calls);
    expect(await guard.run('item@1', async () => ++calls)).toEqual({ ran: false });
    expect(guard.isDone('item@1')).toBe(true);
    expect(calls).toBe(1);
  });

  it('frees the item after a failure so the reviewer can retry', async () => {
    const guard = new DecisionGuard();
    await expect(guard.run('item@1', () => Promise.reject(new Error('gate down')))).rejects.toThrow('gate down');
    expect(guard.isBusy('item@1')).toBe(false);
    expect(await guard.run('item@1', async () => 'ok')).toEqual({ ran: true, value: 'ok' });
  });

  it('keeps items apart, and a new version of an item is a new key', async () => {
    const guard = new DecisionGuard();
    await guard.run('item@1', async () => 1);
    expect(await guard.run('other@1', async () => 2)).toEqual({ ran: true, value: 2 });
    expect(await guard.run('item@2', async () => 3)).toEqual({ ran: true, value: 3 });
  });
});

describe('dwell before a decision key', () => {
  it('ignores decision keys until the item has been on screen for the dwell time', async () => {
    const { dwellOver, DWELL_MS } = await import('../src/lib/guard');
    expect(dwellOver(1000, 1000)).toBe(false);
    expect(dwellOver(1000, 1000 + DWELL_MS - 1)).toBe(false);
    expect(dwellOver(1000, 1000 + DWELL_MS)).toBe(true);
    expect(dwellOver(1000, 1050, 50)).toBe(true);
  });
});
