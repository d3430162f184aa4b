// The supervisor mode's state against a fake shell: which commands it sends with which
// arguments, what it refuses before sending, and what it shows of the answers.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { lease, summary, trail, step, decisionStep } from './supervisor-fixtures';

const invoke = vi.fn();
const channels: { onmessage: (m: unknown) => void }[] = [];
vi.mock('@tauri-apps/api/core', () => ({
  invoke: (...args: unknown[]) => invoke(...args),
  Channel: class {
    onmessage: (m: unknown) => void = () => undefined;
    constructor() {
      channels.push(this);
    }
  },
}));
vi.mock('@tauri-apps/api/event', () => ({ listen: async () => () => undefined }));

const { SupervisorState, supervisorState } = await import('../src/lib/supervisor.svelte');

const calls = (cmd: string) => invoke.mock.calls.filter((c) => c[0] === cmd).map((c) => c[1]);
const localIso = (y: number, m: number, d: number) => new Date(y, m - 1, d).toISOString();

beforeEach(() => {
  invoke.mockReset();
  channels.length = 0;
});

describe('the mode’s state', () => {
  it('is one for the window, so leaving the mode and coming back keeps it', () => {
    const first = supervisorState();
    first.tab = 'leases';
    expect(supervisorState()).toBe(first);
    expect(supervisorState().tab).toBe('leases');
  });
});

describe('decision search', () => {
  it('loads the newest decisions when the tab opens, and pages on with the cursor', async () => {
    invoke.mockResolvedValueOnce({ decisions: [summary()], next_cursor: 'c2', as_of_log_size: 40 });
    const sv = new SupervisorState();
    sv.open('decisions');
    await vi.waitFor(() => expect(sv.searched).toBe(true));
    expect(calls('supervision_decisions')).toEqual([
      { filter: expect.objectContaining({ reviewer: null, kind: null, cursor: null, limit: 50 }) },
    ]);
    expect(sv.results.map((d) => d.decision_id)).toEqual(['d-1']);

    // The next page uses the shown search's filters even if the form changed meanwhile.
    sv.form.reviewer = 'someone.else';
    // The last page has no `next_cursor` at all: the gate leaves it out and the desk hands it on.
    invoke.mockResolvedValueOnce({ decisions: [summary({ decision_id: 'd-2' })], as_of_log_size: 40 });
    await sv.search(true);
    expect(calls('supervision_decisions')[1]).toEqual({ filter: expect.objectContaining({ reviewer: null, cursor: 'c2' }) });
    expect(sv.results.map((d) => d.decision_id)).toEqual(['d-1', 'd-2']);
    expect(sv.nextCursor).toBeNull();
    // Opening the tab again does not search again.
    sv.open('decisions');
    expect(calls('supervision_decisions')).toHaveLength(2);
  });

  it('sends the form as the desk filter and refuses bad dates without asking', async () => {
    const sv = new SupervisorState();
    sv.form = { reviewer: 'rita.reviewer', model: '', lane: 'review', kind: 'correct', outcome: '', conflict: 'none', from: '2026-11-01', to: '2026-11-02' };
    invoke.mockResolvedValueOnce({ decisions: [], next_cursor: null, as_of_log_size: 40 });
    await sv.search();
    expect(calls('supervision_decisions')[0]).toEqual({
      filter: {
        reviewer: 'rita.reviewer', model: null, lane: 'review', kind: 'correct', outcome: null, conflict: false,
        queue: null, flagged: null, from: localIso(2026, 11, 1), to: localIso(2026, 11, 3), cursor: null, limit: 50,
      },
    });
    sv.form.to = '2026-10-01';
    await sv.search();
    expect(sv.formError).toMatch(/before the first day/);
    expect(invoke).toHaveBeenCalledTimes(1);
  });

  it('lists one reviewer’s decisions from the reviewer table, with the other filters cleared', async () => {
    invoke.mockResolvedValue({ decisions: [], next_cursor: null, as_of_log_size: 1 });
    const sv = new SupervisorState();
    sv.form.kind = 'correct';
    sv.tab = 'reviewers';
    sv.searchReviewer('rob.reviewer');
    expect(sv.tab).toBe('decisions');
    await vi.waitFor(() => expect(sv.searched).toBe(true));
    expect(calls('supervision_decisions')).toEqual([{ filter: expect.objectContaining({ reviewer: 'rob.reviewer', kind: null }) }]);
    // The tab counts as loaded: opening it does not search again.
    sv.open('decisions');
    expect(calls('supervision_decisions')).toHaveLength(1);
  });

  it('shows a refusal in words with its code', async () => {
    invoke.mockRejectedValueOnce({ code: 'not_supervisor', message: 'rita.reviewer is a reviewer here' });
    const sv = new SupervisorState();
    await sv.search();
    expect(sv.searchFailure).toMatchObject({ code: 'not_supervisor', title: 'Only supervisors and admins may do this', detail: 'rita.reviewer is a reviewer here' });
    expect(sv.searching).toBe(false);
  });
});

describe('decision trail', () => {
  it('fetches the trail of an item and keeps only the latest one asked for', async () => {
    let answerFirst: (v: unknown) => void = () => undefined;
    invoke.mockImplementationOnce(() => new Promise((r) => (answerFirst = r)));
    const second = trail([step(), decisionStep()], { item: { ...trail([]).item, item_id: 'item-2' } });
    invoke.mockResolvedValueOnce(second);
    const sv = new SupervisorState();
    const first = sv.openTrail('item-1');
    await sv.openTrail('item-2');
    answerFirst(trail([step()]));
    await first;
    expect(calls('supervision_trail')).toEqual([{ itemId: 'item-1' }, { itemId: 'item-2' }]);
    expect(sv.trail?.item.item_id).toBe('item-2');
    sv.closeTrail();
    expect(sv.trailItem).toBeNull();
    expect(sv.trail).toBeNull();
  });
});

describe('actions with a reason', () => {
  it('refuses a withdrawal without a reason, then withdraws and drops the lease from the list', async () => {
    const sv = new SupervisorState();
    sv.leases = [lease(), lease({ lease_id: 'lease-2', subject: 'application-000002' })];
    sv.ask({ kind: 'withdraw', lease: sv.leases[0] });
    expect(await sv.confirm('  ')).toBe(false);
    expect(sv.actionFailure).toMatch(/Give a reason/);
    expect(invoke).not.toHaveBeenCalled();

    invoke.mockResolvedValueOnce({ lease_id: 'lease-1', item_id: 'item-1', state: 'withdrawn' });
    expect(await sv.confirm(' rita is on leave ')).toBe(true);
    expect(calls('supervision_withdraw')).toEqual([{ leaseId: 'lease-1', reason: 'rita is on leave' }]);
    expect(sv.leases.map((l) => l.lease_id)).toEqual(['lease-2']);
    expect(sv.action).toBeNull();
    expect(sv.notice).toMatchObject({ kind: 'info', title: 'Lease of application-000001 withdrawn from rita.reviewer' });
  });

  it('reassigns to a named reviewer and reloads the leases', async () => {
    const sv = new SupervisorState();
    sv.ask({ kind: 'reassign', lease: lease() });
    expect(await sv.confirm('')).toBe(false);
    expect(sv.actionFailure).toMatch(/Name the reviewer/);
    invoke.mockResolvedValueOnce({ lease_id: 'lease-9', item_id: 'item-1', state: 'active' });
    invoke.mockResolvedValueOnce([]);
    expect(await sv.confirm('rob.reviewer')).toBe(true);
    expect(calls('supervision_reassign')).toEqual([{ leaseId: 'lease-1', toUser: 'rob.reviewer' }]);
    await vi.waitFor(() => expect(calls('supervision_leases')).toHaveLength(1));
  });

  it('keeps the dialog open with the gate’s refusal', async () => {
    const sv = new SupervisorState();
    sv.results = [summary()];
    sv.ask({ kind: 'flag', decisionId: 'd-1', what: 'approve by rita' });
    invoke.mockRejectedValueOnce({ code: 'gate_refused', message: 'not_found: no such decision' });
    expect(await sv.confirm('too fast')).toBe(false);
    expect(sv.action).not.toBeNull();
    expect(sv.actionFailure).toBe('The gate refused the request. not_found: no such decision');
    expect(sv.results[0].flags).toBe(0);

    invoke.mockResolvedValueOnce({ flag_id: 'f', decision_id: 'd-1', flagged_by: 'sue', reason: 'too fast', log_index: 50, flagged_at: '2026-11-30T10:00:00Z' });
    expect(await sv.confirm('too fast')).toBe(true);
    expect(calls('supervision_flag')[1]).toEqual({ decisionId: 'd-1', reason: 'too fast' });
    expect(sv.results[0].flags).toBe(1);
  });

  it('re-reviews and resets a breaker with their reasons', async () => {
    const sv = new SupervisorState();
    invoke.mockResolvedValueOnce({ qa: { item_id: '0190aaaa-bbbb' }, evidence_sha256: 'x' });
    sv.ask({ kind: 'rereview', decisionId: 'd-1', what: 'approve' });
    expect(await sv.confirm('sample check')).toBe(true);
    expect(calls('supervision_rereview')).toEqual([{ decisionId: 'd-1', reason: 'sample check' }]);
    expect(sv.notice?.title).toMatch(/QA item 0190aaaa/);

    invoke.mockResolvedValue({});
    sv.ask({ kind: 'reset', model: 'credit-scorer@2.4.0' });
    expect(await sv.confirm('retrained, checked by hand')).toBe(true);
    expect(calls('supervision_reset_breaker')).toEqual([{ model: 'credit-scorer@2.4.0', reason: 'retrained, checked by hand' }]);
  });
});

describe('model monitoring', () => {
  it('asks for the breakers, the override rate and the corrected fields of one range', async () => {
    invoke.mockImplementation(async (cmd: string) =>
      cmd === 'supervision_models' ? { circuit_breaker: null, models: [], as_of_log_size: 1 } : cmd === 'supervision_override_rate' ? { bucket: 'day', series: [] } : { models: [] },
    );
    const sv = new SupervisorState();
    sv.modelRange = { from: '2026-09-01', to: '2026-11-30' };
    sv.bucket = 'hour';
    await sv.loadModels();
    // 91 days is too long for hourly buckets: the gate would refuse, so the state picks days.
    expect(sv.bucket).toBe('day');
    const filter = { model: null, from: localIso(2026, 9, 1), to: localIso(2026, 12, 1), bucket: 'day' };
    expect(calls('supervision_override_rate')).toEqual([{ filter }]);
    expect(calls('supervision_corrected_fields')).toEqual([{ filter }]);
    expect(calls('supervision_models')).toHaveLength(1);
    expect(sv.overrides).toEqual({ bucket: 'day', series: [] });
  });
});

describe('log integrity and the audit bundle', () => {
  it('streams the check’s progress from its channel', async () => {
    let finish: (v: unknown) => void = () => undefined;
    invoke.mockImplementationOnce(() => new Promise((r) => (finish = r)));
    const sv = new SupervisorState();
    const running = sv.checkLog();
    expect(sv.integrityRunning).toBe(true);
    expect(invoke.mock.calls[0][0]).toBe('log_check');
    expect(invoke.mock.calls[0][1].onProgress).toBe(channels[0]);
    channels[0].onmessage({ phase: 'inclusion', done: 5, total: 10 });
    expect(sv.integrityProgress).toEqual({ phase: 'inclusion', done: 5, total: 10 });
    // A second press while it runs starts nothing.
    await sv.checkLog();
    expect(invoke).toHaveBeenCalledTimes(1);
    finish({ ok: true, problems: [] });
    await running;
    expect(sv.integrityRunning).toBe(false);
    expect(sv.integrity).toEqual({ ok: true, problems: [] });
  });

  it('exports a bundle for whole days into the folder given, after checking both', async () => {
    const sv = new SupervisorState();
    sv.bundleRange = { from: '2026-11-01', to: '2026-11-30' };
    await sv.exportBundle();
    expect(sv.bundleFailure?.help).toMatch(/folder/);
    sv.bundleDir = ' /tmp/audits ';
    sv.bundleRange = { from: '', to: '2026-11-30' };
    await sv.exportBundle();
    expect(sv.bundleFailure?.help).toMatch(/both the first and the last day/);
    expect(invoke).not.toHaveBeenCalled();

    sv.bundleRange = { from: '2026-11-01', to: '2026-11-30' };
    invoke.mockResolvedValueOnce({ path: '/tmp/audits/countersign-bundle-x', summary: 'ok' });
    await sv.exportBundle();
    expect(calls('bundle_export')).toEqual([{ dir: '/tmp/audits', from: localIso(2026, 11, 1), to: localIso(2026, 12, 1) }]);
    expect(sv.bundle?.path).toBe('/tmp/audits/countersign-bundle-x');
    expect(sv.bundleFailure).toBeNull();
  });

  it('takes the folder from the picker, and keeps the typed one when it is cancelled', async () => {
    const sv = new SupervisorState();
    invoke.mockResolvedValueOnce('/home/sue/audits');
    await sv.chooseBundleDir();
    expect(sv.bundleDir).toBe('/home/sue/audits');
    invoke.mockResolvedValueOnce(null);
    await sv.chooseBundleDir();
    expect(sv.bundleDir).toBe('/home/sue/audits');
    expect(calls('bundle_choose_dir')).toEqual([undefined, undefined]);
  });
});
