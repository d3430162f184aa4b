import { describe, expect, it } from 'vitest';
import {
  agreement,
  bucketAllowed,
  bucketFor,
  dayRange,
  EMPTY_SEARCH,
  filterFromForm,
  integrityFraction,
  isSupervisor,
  lastDays,
  overrideChartData,
  reasonProblem,
  share,
  signals,
  sortReviewers,
  stepProblems,
  stepVerified,
  timeOnItem,
} from '../src/lib/supervision';
import { decisionStep, fail, reviewer, step } from './supervisor-fixtures';

const localIso = (y: number, m: number, d: number) => new Date(y, m - 1, d).toISOString();

describe('who sees the supervisor mode', () => {
  it('is supervisors and admins only', () => {
    expect(isSupervisor('supervisor')).toBe(true);
    expect(isSupervisor('admin')).toBe(true);
    for (const role of ['reviewer', 'senior', '', 'Supervisor', null, undefined]) expect(isSupervisor(role)).toBe(false);
  });
});

describe('date ranges', () => {
  it('turns whole local days into a half-open range of instants', () => {
    expect(dayRange('2026-11-02', '2026-11-30')).toEqual({ from: localIso(2026, 11, 2), to: localIso(2026, 12, 1) });
    // One day: from its start to the next day's.
    expect(dayRange('2026-12-31', '2026-12-31')).toEqual({ from: localIso(2026, 12, 31), to: localIso(2027, 1, 1) });
    expect(dayRange('', '')).toEqual({ from: null, to: null });
    expect(dayRange('2026-11-02', '')).toEqual({ from: localIso(2026, 11, 2), to: null });
  });

  it('refuses dates that do not exist and a last day before the first', () => {
    expect(dayRange('2026-02-30', '')).toHaveProperty('error');
    expect(dayRange('', '30/11/2026')).toHaveProperty('error');
    expect(dayRange('2026-11-30', '2026-11-29')).toEqual({ error: 'The last day is before the first day.' });
  });

  it('gives the last N days ending today', () => {
    expect(lastDays(7, new Date(2026, 11, 1, 15, 30))).toEqual({ from: '2026-11-25', to: '2026-12-01' });
    expect(lastDays(1, new Date(2026, 0, 1))).toEqual({ from: '2026-01-01', to: '2026-01-01' });
  });
});

describe('the decision search form', () => {
  it('sends only the filters given, trimmed, with the conflict choice as a boolean', () => {
    expect(filterFromForm(EMPTY_SEARCH)).toEqual({
      filter: { reviewer: null, model: null, lane: null, kind: null, outcome: null, conflict: null, queue: null, flagged: null, from: null, to: null, cursor: null, limit: 50 },
    });
    const built = filterFromForm(
      { ...EMPTY_SEARCH, reviewer: '  rita.reviewer ', model: 'credit-scorer@2.3.0', lane: 'human_only', kind: 'correct', outcome: 'conflict', conflict: 'only', from: '2026-11-01', to: '2026-11-30' },
      'cursor-2',
      100,
    );
    expect(built).toEqual({
      filter: {
        reviewer: 'rita.reviewer',
        model: 'credit-scorer@2.3.0',
        lane: 'human_only',
        kind: 'correct',
        outcome: 'conflict',
        conflict: true,
        queue: null,
        flagged: null,
        from: localIso(2026, 11, 1),
        to: localIso(2026, 12, 1),
        cursor: 'cursor-2',
        limit: 100,
      },
    });
    expect(filterFromForm({ ...EMPTY_SEARCH, conflict: 'none' })).toMatchObject({ filter: { conflict: false } });
    expect(filterFromForm({ ...EMPTY_SEARCH, from: '2026-13-01' })).toHaveProperty('error');
  });
});

describe('override-rate buckets', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');
  it('picks the finest bucket that keeps the chart readable', () => {
    expect(bucketFor({ from: '2026-11-28T00:00:00Z', to: '2026-12-01T00:00:00Z' }, now)).toBe('hour');
    expect(bucketFor({ from: '2026-10-01T00:00:00Z', to: null }, now)).toBe('day');
    expect(bucketFor({ from: '2025-01-01T00:00:00Z', to: null }, now)).toBe('week');
    expect(bucketFor({ from: null, to: null }, now)).toBe('week');
  });

  it('allows hourly buckets for 31 days at most, as the gate does', () => {
    expect(bucketAllowed('hour', { from: '2026-11-01T00:00:00Z', to: '2026-12-02T00:00:00Z' }, now)).toBe(true);
    expect(bucketAllowed('hour', { from: '2026-11-01T00:00:00Z', to: '2026-12-02T00:00:01Z' }, now)).toBe(false);
    expect(bucketAllowed('hour', { from: null, to: null }, now)).toBe(false);
    expect(bucketAllowed('day', { from: null, to: null }, now)).toBe(true);
  });
});

describe('the override-rate chart data', () => {
  const point = (start: string, decisions: number, overrides: number) => ({
    start,
    decisions,
    overrides,
    override_rate: decisions ? overrides / decisions : 0,
    approve: decisions - overrides,
    correct: overrides,
    escalate: 0,
    qa_decisions: 0,
    qa_overrides: 0,
  });

  it('puts every version on one time axis, with gaps where a version had no decision', () => {
    const data = overrideChartData(
      {
        bucket: 'day',
        from: '2026-11-28T00:00:00Z',
        to: '2026-12-01T00:00:00Z',
        as_of_log_size: 100,
        series: [
          { model: 'credit-scorer@2.4.0', points: [point('2026-11-30T00:00:00Z', 3, 2)] },
          { model: 'credit-scorer@2.3.0', points: [point('2026-11-29T00:00:00Z', 8, 1), point('2026-11-28T00:00:00Z', 4, 0)] },
        ],
      },
      'UTC',
    );
    expect(data.starts).toEqual(['2026-11-28T00:00:00Z', '2026-11-29T00:00:00Z', '2026-11-30T00:00:00Z']);
    expect(data.labels).toEqual(['28 Nov', '29 Nov', '30 Nov']);
    expect(data.series.map((s) => s.model)).toEqual(['credit-scorer@2.3.0', 'credit-scorer@2.4.0']);
    expect(data.series[0]).toEqual({ model: 'credit-scorer@2.3.0', rates: [0, 12.5, null], decisions: [4, 8, 0], overrides: [0, 1, 0] });
    expect(data.series[1].rates).toEqual([null, null, 66.7]);
  });

  it('labels hours and weeks', () => {
    const one = (bucket: string, start: string) =>
      overrideChartData({ bucket, from: start, to: start, as_of_log_size: 1, series: [{ model: 'm@1', points: [point(start, 1, 1)] }] }, 'UTC').labels[0];
    expect(one('hour', '2026-11-30T14:00:00Z')).toBe('30 Nov, 14:00');
    expect(one('week', '2026-11-30T00:00:00Z')).toBe('week of 30 Nov');
  });
});

describe('words for the statistics', () => {
  it('formats shares and times on item', () => {
    expect(share(0.75)).toBe('75 %');
    expect(share(0.053)).toBe('5.3 %');
    expect(share(0)).toBe('0 %');
    expect(share(null)).toBe('–');
    expect(timeOnItem(850)).toBe('850 ms');
    expect(timeOnItem(12_400)).toBe('12 s');
    expect(timeOnItem(185_000)).toBe('3 min 5 s');
    expect(timeOnItem(120_000)).toBe('2 min');
    expect(timeOnItem(null)).toBe('–');
  });
});

describe('rubber-stamp and deadline signals', () => {
  it('says nothing about a careful reviewer', () => {
    expect(signals(reviewer())).toEqual([]);
  });

  it('flags many fast approvals, but not a few', () => {
    const fast = reviewer({ rubber_stamp: { fast_seconds: 5, fast_approvals: 12, fast_approval_share: 0.4, longest_approval_run: 6 } });
    expect(signals(fast)).toEqual([{ kind: 'fast', words: '40 % of approvals under 5 s' }]);
    const few = reviewer({ rubber_stamp: { fast_seconds: 5, fast_approvals: 2, fast_approval_share: 1, longest_approval_run: 2 } });
    expect(signals(few)).toEqual([]);
  });

  it('flags long runs of approvals and frequent lateness', () => {
    const r = reviewer({ decisions: 40, sla_breaches: 4, rubber_stamp: { fast_seconds: 5, fast_approvals: 0, fast_approval_share: 0, longest_approval_run: 25 } });
    expect(signals(r).map((s) => s.kind)).toEqual(['run', 'sla']);
    expect(signals(reviewer({ decisions: 40, sla_breaches: 3 }))).toEqual([]);
  });

  it('sorts reviewers by a column, ties by name, and agreement over both kinds of pairs', () => {
    const rows = [
      reviewer({ reviewer: 'cara', user_id: 'c', decisions: 10 }),
      reviewer({ reviewer: 'abe', user_id: 'a', decisions: 30 }),
      reviewer({ reviewer: 'bea', user_id: 'b', decisions: 10 }),
    ];
    expect(sortReviewers(rows, 'decisions', true).map((r) => r.reviewer)).toEqual(['abe', 'bea', 'cara']);
    expect(sortReviewers(rows, 'decisions', false).map((r) => r.reviewer)).toEqual(['bea', 'cara', 'abe']);
    expect(sortReviewers(rows, 'reviewer', false).map((r) => r.reviewer)).toEqual(['abe', 'bea', 'cara']);
    expect(agreement(reviewer({ four_eyes: { pairs: 4, agreed: 3, rate: 0.75 }, qa: { pairs: 6, agreed: 6, rate: 1 } }))).toBe(0.9);
    expect(agreement(reviewer({ four_eyes: { pairs: 0, agreed: 0, rate: null }, qa: { pairs: 0, agreed: 0, rate: null } }))).toBeNull();
  });
});

describe('trail step checks', () => {
  it('holds only when inclusion, content, signature and key all held', () => {
    expect(stepVerified(step())).toBe(true);
    expect(stepVerified(decisionStep())).toBe(true);
    const bad = decisionStep({ signature: fail('the JWS does not verify with key k-1') });
    expect(stepVerified(bad)).toBe(false);
    expect(stepProblems(bad)).toEqual(['signature: the JWS does not verify with key k-1']);
    const lost = step({ inclusion: fail('no proof'), content: fail('routing differs') });
    expect(stepVerified(lost)).toBe(false);
    expect(stepProblems(lost)).toEqual(['inclusion: no proof', 'content: routing differs']);
  });
});

describe('integrity progress and reasons', () => {
  it('moves one bar across the three phases', () => {
    expect(integrityFraction(null)).toBe(0);
    expect(integrityFraction({ phase: 'checkpoints', done: 0, total: 4 })).toBe(0);
    expect(integrityFraction({ phase: 'consistency', done: 1, total: 2 })).toBeCloseTo(0.5);
    expect(integrityFraction({ phase: 'inclusion', done: 10, total: 10 })).toBe(1);
    expect(integrityFraction({ phase: 'inclusion', done: 0, total: 0 })).toBeCloseTo(2 / 3);
  });

  it('requires a reason of bounded length', () => {
    expect(reasonProblem('   ')).toMatch(/Give a reason/);
    expect(reasonProblem('x'.repeat(2001))).toMatch(/at most 2000/);
    expect(reasonProblem(' reviewer on leave ')).toBeNull();
  });
});
