import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { entry } from './fixtures';

// The app state against a fake shell: what a reviewer's key presses do to the queue and the calls
// the backend receives.
const invoke = vi.fn();
vi.mock('@tauri-apps/api/core', () => ({
  invoke: (...args: unknown[]) => invoke(...args),
  Channel: class {
    onmessage: (m: unknown) => void = () => undefined;
  },
}));
vi.mock('@tauri-apps/api/event', () => ({ listen: async () => () => undefined }));

const { DeskState } = await import('../src/lib/desk.svelte');
const { countRows } = await import('../src/lib/queue');

const entries = ['a', 'b', 'c'].map((id, i) =>
  entry({ item_id: id, subject: `application-${id}`, due_at: `2026-11-24T1${i}:00:00Z` }),
);

function detail(e: ReturnType<typeof entry>) {
  return {
    entry: e,
    item: { item_id: e.item_id, routing: { lane: e.lane }, outcome_schema: [], allowed_reasons: [] },
    evidence_sha256: 'x',
    current_outcome: null,
    approvals_required: 1,
    approvals_given: 0,
    protected_attributions: [],
    decided: null,
  };
}

let decideResolvers: ((v: unknown) => void)[] = [];
let itemCalls: string[] = [];

beforeEach(() => {
  decideResolvers = [];
  itemCalls = [];
  invoke.mockReset();
  invoke.mockImplementation(async (cmd: string, args: Record<string, any>) => {
    switch (cmd) {
      case 'status':
        return { account: {}, online: true, queue_count: entries.length, pending_sync: 0, conflicts: 0, last_sync_at: null, last_error: null, checkpoint: null };
      case 'queue':
        return entries;
      case 'item':
        itemCalls.push(args.itemId);
        return detail(entries.find((e) => e.item_id === args.itemId)!);
      case 'decide':
        return new Promise((resolve) => decideResolvers.push(resolve));
      default:
        throw { code: 'not_found', message: cmd };
    }
  });
});

/** The next `command` call fails with `error`; other calls (prefetches) still answer. */
function failNext(command: string, error: { code: string; message: string }) {
  const answer = invoke.getMockImplementation()!;
  let failed = false;
  invoke.mockImplementation(async (cmd: string, args: Record<string, any>) => {
    if (cmd !== command || failed) return answer(cmd, args);
    failed = true;
    throw error;
  });
}

let desk: InstanceType<typeof DeskState> | null = null;
afterEach(() => desk?.stop());

async function ready() {
  desk = new DeskState();
  await desk.start();
  await vi.waitFor(() => expect(desk!.detail?.entry.item_id).toBe('a'));
  // The neighbours are fetched ahead.
  await vi.waitFor(() => expect(itemCalls).toContain('b'));
  return desk;
}

describe('deciding in the app state', () => {
  it('opens on the most urgent item and prefetches the next one', async () => {
    const d = await ready();
    expect(d.visible.map((r) => r.entry.item_id)).toEqual(['a', 'b', 'c']);
    expect(d.phase).toBe('ready');
  });

  it('makes one decision from a double press and then shows the next item from the cache', async () => {
    const d = await ready();
    const first = d.decide('approve');
    const second = d.decide('approve');
    expect(d.canDecide).toBe(false);
    expect(await second).toBe(false);
    expect(invoke.mock.calls.filter(([c]) => c === 'decide')).toHaveLength(1);
    decideResolvers[0]!({ decision_id: 'd1', device_seq: 1, item_id: 'a', kind: 'approve', saved_at: '' });
    expect(await first).toBe(true);
    // The next item is on screen without another `item` call.
    const before = itemCalls.filter((id) => id === 'b').length;
    expect(d.detail?.entry.item_id).toBe('b');
    expect(itemCalls.filter((id) => id === 'b').length).toBe(before);
    expect(d.rows.map((r) => r.entry.item_id)).toEqual(['b', 'c']);
  });

  it('keeps the item when the desk refuses the decision, and drops it when already decided', async () => {
    const d = await ready();
    failNext('decide', { code: 'invalid_decision', message: 'a correction must change something' });
    expect(await d.decide('correct', [], ['R-x'])).toBe(false);
    expect(d.decideFailure?.code).toBe('invalid_decision');
    expect(d.rows).toHaveLength(3);
    failNext('decide', { code: 'already_decided', message: 'decided before' });
    expect(await d.decide('approve')).toBe(false);
    expect(d.rows.map((r) => r.entry.item_id)).toEqual(['b', 'c']);
    expect(d.notice?.title).toBe('Already decided');
  });

  it('shows the next item while an approval is saved, and brings a refused one back', async () => {
    const d = await ready();
    const saving = d.decide('approve');
    // On screen before the desk answered; no other decision until it has.
    expect(d.detail?.entry.item_id).toBe('b');
    expect(d.rows.map((r) => r.entry.item_id)).toEqual(['b', 'c']);
    expect(d.canDecide).toBe(false);
    expect(await d.decide('approve')).toBe(false);
    expect(invoke.mock.calls.filter(([c]) => c === 'decide')).toHaveLength(1);
    decideResolvers[0]!({ decision_id: 'd1', device_seq: 1, item_id: 'a', kind: 'approve', saved_at: '' });
    expect(await saving).toBe(true);
    expect(d.canDecide).toBe(true);

    failNext('decide', { code: 'storage', message: 'disk full' });
    expect(await d.decide('approve')).toBe(false);
    expect(d.rows.map((r) => r.entry.item_id)).toEqual(['b', 'c']);
    expect(d.selectedId).toBe('b');
    await vi.waitFor(() => expect(d.detail?.entry.item_id).toBe('b'));
    expect(d.decideFailure?.code).toBe('storage');
  });

  it('keeps the filtered list and the counts right through approvals', async () => {
    const d = await ready();
    d.setFilter({ text: 'application' });
    expect(d.visible.map((r) => r.entry.item_id)).toEqual(['a', 'b', 'c']);
    for (const [id, next] of [
      ['a', 'b'],
      ['b', 'c'],
    ] as const) {
      expect(d.selectedId).toBe(id);
      await vi.waitFor(() => expect(d.detail?.entry.item_id).toBe(id));
      const saving = d.decide('approve');
      await vi.waitFor(() => expect(decideResolvers).toHaveLength(1));
      decideResolvers.shift()!({ decision_id: `d-${id}`, device_seq: 1, item_id: id, kind: 'approve', saved_at: '' });
      expect(await saving).toBe(true);
      expect(d.selectedId).toBe(next);
      // The same answers as filtering and counting the remaining rows from scratch.
      expect(d.visible.map((r) => r.entry.item_id)).toEqual(d.rows.map((r) => r.entry.item_id));
      expect(d.counts).toEqual(countRows(d.rows, d.coarseNow));
      expect(d.counts.total).toBe(d.rows.length);
      expect(d.visibleIndexOf(next)).toBe(d.visible.findIndex((r) => r.entry.item_id === next));
    }
    // A filter that hides the rest.
    d.setFilter({ text: 'nothing' });
    expect(d.visible).toEqual([]);
    expect(d.visibleIndexOf('c')).toBe(-1);
  });

  it('does not approve a human-only item', async () => {
    entries[0] = { ...entries[0]!, lane: 'human_only' };
    try {
      const d = await ready();
      expect(await d.decide('approve')).toBe(false);
      expect(invoke.mock.calls.some(([c]) => c === 'decide')).toBe(false);
    } finally {
      entries[0] = { ...entries[0]!, lane: 'review' };
    }
  });

  it('moves with next and previous within the filtered list', async () => {
    const d = await ready();
    d.move(1);
    await vi.waitFor(() => expect(d.detail?.entry.item_id).toBe('b'));
    d.setFilter({ text: 'application-c' });
    await vi.waitFor(() => expect(d.detail?.entry.item_id).toBe('c'));
    d.move(-1);
    expect(d.selectedId).toBe('c');
  });

  it('starts on the first-run screen when the desk is not enrolled', async () => {
    // As the shell does: every command of an unenrolled desk is refused.
    invoke.mockImplementation(async () => {
      throw { code: 'not_enrolled', message: 'no account' };
    });
    desk = new DeskState();
    await desk.start();
    expect(desk.phase).toBe('first-run');
  });
});
