import { describe, expect, it } from 'vitest';
import {
  applyFilter,
  countRows,
  countsWithout,
  indexOfRow,
  isNoFilter,
  neighbour,
  neighbourAt,
  nextAfterRemoval,
  nextAfterRemovalAt,
  NO_FILTER,
  sameQueue,
  sortRows,
  toRow,
  withoutIndex,
} from '../src/lib/queue';
import { entry } from './fixtures';

const now = Date.parse('2026-11-24T12:00:00Z');

const entries = [
  entry({ item_id: 'c', subject: 'application-3', due_at: '2026-11-24T15:00:00Z', received_at: '2026-11-24T09:00:00Z' }),
  entry({ item_id: 'a', subject: 'application-1', due_at: '2026-11-24T11:00:00Z', lane: 'human_only', offline: true }),
  entry({ item_id: 'b2', subject: 'Application-22', due_at: '2026-11-24T13:00:00Z', received_at: '2026-11-24T08:30:00Z' }),
  entry({ item_id: 'b1', subject: 'application-21', due_at: '2026-11-24T13:00:00Z', received_at: '2026-11-24T08:00:00Z' }),
  entry({ item_id: 'z', subject: 'application-9', due_at: 'not a time' }),
];

describe('queue order', () => {
  it('sorts by SLA, then by arrival, and puts unparsable times last', () => {
    expect(sortRows(entries).map((r) => r.entry.item_id)).toEqual(['a', 'b1', 'b2', 'c', 'z']);
  });

  it('breaks full ties by subject so the order is stable', () => {
    const same = { due_at: '2026-11-24T13:00:00Z', received_at: '2026-11-24T08:00:00Z' };
    const rows = sortRows([entry({ item_id: 'y', subject: 'b', ...same }), entry({ item_id: 'x', subject: 'a', ...same })]);
    expect(rows.map((r) => r.entry.subject)).toEqual(['a', 'b']);
  });
});

describe('queue filters and counts', () => {
  const rows = sortRows(entries);
  const ids = (f: Partial<typeof NO_FILTER>) => applyFilter(rows, { ...NO_FILTER, ...f }, now).map((r) => r.entry.item_id);

  it('returns everything without a filter', () => {
    expect(ids({})).toEqual(['a', 'b1', 'b2', 'c', 'z']);
  });

  it('filters by lane', () => {
    expect(ids({ lane: 'human_only' })).toEqual(['a']);
    expect(ids({ lane: 'review' })).toEqual(['b1', 'b2', 'c', 'z']);
    expect(ids({ lane: 'auto' })).toEqual([]);
  });

  it('filters overdue items against the given clock', () => {
    expect(ids({ overdueOnly: true })).toEqual(['a']);
    expect(applyFilter(rows, { ...NO_FILTER, overdueOnly: true }, Date.parse('2026-11-24T14:00:00Z')).map((r) => r.entry.item_id)).toEqual(['a', 'b1', 'b2']);
  });

  it('filters on the subject, case-insensitively and trimmed', () => {
    expect(ids({ text: ' APPLICATION-2 ' })).toEqual(['b1', 'b2']);
    expect(ids({ text: 'nothing' })).toEqual([]);
  });

  it('combines filters', () => {
    expect(ids({ text: 'application-2', overdueOnly: true })).toEqual([]);
    expect(ids({ text: 'application-1', lane: 'human_only', overdueOnly: true })).toEqual(['a']);
  });

  it('counts totals, overdue, offline and lanes', () => {
    expect(countRows(rows, now)).toEqual({ total: 5, overdue: 1, offline: 1, byLane: { auto: 0, review: 4, human_only: 1 } });
  });

  it('handles 10 000 entries quickly', () => {
    const many = Array.from({ length: 10000 }, (_, i) =>
      entry({ item_id: `i${i}`, subject: `application-${i}`, due_at: new Date(now + ((i * 7919) % 10000) * 1000).toISOString() }),
    );
    const t0 = performance.now();
    const sorted = sortRows(many);
    const filtered = applyFilter(sorted, { ...NO_FILTER, text: '99' }, now);
    const elapsed = performance.now() - t0;
    expect(sorted[0]!.dueMs).toBeLessThanOrEqual(sorted[9999]!.dueMs);
    expect(filtered.every((r) => r.entry.subject.includes('99'))).toBe(true);
    expect(elapsed).toBeLessThan(500);
  });
});

describe('moving through the queue', () => {
  const rows = sortRows(entries);

  it('moves to the next and previous item and stops at the ends', () => {
    expect(neighbour(rows, 'a', 1)).toBe('b1');
    expect(neighbour(rows, 'b1', -1)).toBe('a');
    expect(neighbour(rows, 'a', -1)).toBe('a');
    expect(neighbour(rows, 'z', 1)).toBe('z');
    expect(neighbour(rows, null, 1)).toBe('a');
    expect(neighbour(rows, 'gone', -1)).toBe('z');
    expect(neighbour([], 'a', 1)).toBeNull();
  });

  it('shows the item that takes the place of a decided one, else the one before', () => {
    expect(nextAfterRemoval(rows, 'b1')).toBe('b2');
    expect(nextAfterRemoval(rows, 'z')).toBe('c');
    expect(nextAfterRemoval(rows.slice(0, 1), 'a')).toBeNull();
    expect(nextAfterRemoval(rows, 'not-there')).toBe('a');
  });
});

describe('removing one row without a pass over the queue', () => {
  const rows = sortRows(entries);

  it('finds every row by binary search, and not a row that is absent', () => {
    rows.forEach((r, i) => expect(indexOfRow(rows, r)).toBe(i));
    expect(indexOfRow(rows, toRow(entry({ item_id: 'gone', due_at: '2026-11-24T13:00:00Z' })))).toBe(-1);
    expect(indexOfRow([], rows[0]!)).toBe(-1);
    // In a filtered list, a row the filter hid is not found.
    const review = applyFilter(rows, { ...NO_FILTER, lane: 'review' }, now);
    expect(indexOfRow(review, rows[0]!)).toBe(-1);
    expect(indexOfRow(review, rows[1]!)).toBe(0);
  });

  it('finds rows among 10 000 like a pass over them would', () => {
    const many = sortRows(
      Array.from({ length: 10000 }, (_, i) =>
        entry({ item_id: `i${i}`, subject: `s${i % 7}`, due_at: new Date(now + (i % 97) * 60000).toISOString() }),
      ),
    );
    for (const i of [0, 1, 4999, 9998, 9999]) expect(indexOfRow(many, many[i]!)).toBe(i);
  });

  it('copies a list without one element', () => {
    expect(withoutIndex(['a', 'b', 'c'], 1)).toEqual(['a', 'c']);
    expect(withoutIndex(['a', 'b', 'c'], 0)).toEqual(['b', 'c']);
    expect(withoutIndex(['a', 'b', 'c'], 2)).toEqual(['a', 'b']);
  });

  it('counts without a row as counting again would', () => {
    const counts = countRows(rows, now);
    for (let i = 0; i < rows.length; i++) {
      expect(countsWithout(counts, rows[i]!, now)).toEqual(countRows(withoutIndex(rows, i), now));
    }
  });

  it('moves and advances by index as by id', () => {
    rows.forEach((r, i) => {
      for (const step of [1, -1] as const) expect(neighbourAt(rows, i, step)).toBe(neighbour(rows, r.entry.item_id, step));
      expect(nextAfterRemovalAt(rows, i)).toBe(nextAfterRemoval(rows, r.entry.item_id));
    });
    expect(neighbourAt(rows, -1, 1)).toBe('a');
    expect(neighbourAt(rows, -1, -1)).toBe('z');
  });

  it('knows a filter that lets everything through', () => {
    expect(isNoFilter(NO_FILTER)).toBe(true);
    expect(isNoFilter({ ...NO_FILTER, text: '  ' })).toBe(true);
    expect(isNoFilter({ ...NO_FILTER, lane: 'review' })).toBe(false);
    expect(isNoFilter({ ...NO_FILTER, overdueOnly: true })).toBe(false);
  });
});

describe('reloading the queue', () => {
  const rows = sortRows(entries);

  it('recognises an unchanged queue in any order', () => {
    expect(sameQueue(rows, [...entries].reverse())).toBe(true);
  });

  it('sees a new version, a new due time, a removed or an added item', () => {
    const changed = (i: number, over: Parameters<typeof entry>[0]) => entries.map((e, j) => (j === i ? { ...e, ...over } : e));
    expect(sameQueue(rows, changed(0, { item_version: 2 }))).toBe(false);
    expect(sameQueue(rows, changed(1, { due_at: '2026-11-25T00:00:00Z' }))).toBe(false);
    expect(sameQueue(rows, changed(2, { offline: true }))).toBe(false);
    expect(sameQueue(rows, entries.slice(1))).toBe(false);
    expect(sameQueue(rows, [...entries.slice(1), entry({ item_id: 'new' })])).toBe(false);
  });
});
