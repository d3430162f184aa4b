import { describe, expect, it } from 'vitest';
import { itemShown, markKey, percentile, perf, queueShown } from '../src/lib/perf';

describe('timings for the benchmarks', () => {
  it('measures from the key event to after the paint, once per key', () => {
    perf.keyToPaint.length = 0;
    perf.keyToDom.length = 0;
    const queued: (() => void)[] = [];
    const wait = (f: () => void) => queued.push(f);
    markKey(100);
    itemShown(() => 130, wait);
    // A second item change without a key (e.g. a refresh) measures nothing.
    itemShown(() => 500, wait);
    expect(queued).toHaveLength(1);
    queued[0]!();
    expect(perf.keyToPaint).toEqual([30]);
    expect(perf.keyToDom).toEqual([30]);
  });

  it('records the first interactive queue only', () => {
    perf.queueInteractiveAt = null;
    queueShown(() => 420);
    queueShown(() => 900);
    expect(perf.queueInteractiveAt).toBe(420);
  });

  it('computes nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 95)).toBe(95);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 95)).toBe(7);
    expect(percentile([], 95)).toBeNull();
  });
});
