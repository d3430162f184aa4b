// The supervisor mode's pure logic: who may see it, the search form turned into the desk's
// filter, date ranges, the override-rate chart's data, and the words for the statistics. No
// Svelte and no backend here, so all of it is unit-tested directly.
import type { DecisionFilter } from './generated/DecisionFilter';
import type { IntegrityProgress } from './generated/IntegrityProgress';
import type { OverrideReport } from './generated/OverrideReport';
import type { ReviewerStats } from './generated/ReviewerStats';
import type { TrailStage } from './generated/TrailStage';
import type { TrailStep } from './generated/TrailStep';

/** Roles the supervisor mode is shown to (the desk and the gate enforce the same list). */
export const SUPERVISOR_ROLES: readonly string[] = ['supervisor', 'admin'];

export function isSupervisor(role: string | null | undefined): boolean {
  return typeof role === 'string' && SUPERVISOR_ROLES.includes(role);
}

export interface SearchForm {
  reviewer: string;
  /** `name@version`. */
  model: string;
  lane: '' | 'review' | 'human_only';
  kind: '' | 'approve' | 'correct' | 'escalate';
  outcome: '' | 'applied' | 'conflict' | 'rejected';
  /** `only`: conflicts only; `none`: no conflicts. */
  conflict: '' | 'only' | 'none';
  /** Days as a date input gives them (`YYYY-MM-DD`, local); both ends included. */
  from: string;
  to: string;
}

export const EMPTY_SEARCH: SearchForm = {
  reviewer: '',
  model: '',
  lane: '',
  kind: '',
  outcome: '',
  conflict: '',
  from: '',
  to: '',
};

export const PAGE_SIZE = 50;
const DAY_MS = 86_400_000;

/** The start of a local day given as `YYYY-MM-DD`, or null when it is not a real date. */
export function dayStart(day: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day.trim());
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(y, mo - 1, d);
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d) return null;
  return date;
}

/** `YYYY-MM-DD` of a date, in local time (what a date input shows). */
export function dayText(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}`;
}

export type Range = { from: string | null; to: string | null };

/**
 * A range of whole local days as RFC 3339 instants: `from` the first day's start, `to` the start
 * of the day after the last one (the desk's ranges are half open). Either end may be empty.
 */
export function dayRange(fromDay: string, toDay: string): Range | { error: string } {
  let from: Date | null = null;
  let to: Date | null = null;
  if (fromDay.trim() !== '') {
    from = dayStart(fromDay);
    if (!from) return { error: `“${fromDay}” is not a date` };
  }
  if (toDay.trim() !== '') {
    const last = dayStart(toDay);
    if (!last) return { error: `“${toDay}” is not a date` };
    to = new Date(last.getFullYear(), last.getMonth(), last.getDate() + 1);
  }
  if (from && to && from >= to) return { error: 'The last day is before the first day.' };
  return { from: from?.toISOString() ?? null, to: to?.toISOString() ?? null };
}

/** The last `days` days up to today, as date inputs show them. */
export function lastDays(days: number, now: Date = new Date()): { from: string; to: string } {
  const first = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (days - 1));
  return { from: dayText(first), to: dayText(now) };
}

const blank = (s: string) => (s.trim() === '' ? null : s.trim());

/** The desk's decision filter for a search form, or what is wrong with the form. */
export function filterFromForm(
  form: SearchForm,
  cursor: string | null = null,
  limit = PAGE_SIZE,
): { filter: DecisionFilter } | { error: string } {
  const range = dayRange(form.from, form.to);
  if ('error' in range) return range;
  return {
    filter: {
      reviewer: blank(form.reviewer),
      model: blank(form.model),
      lane: form.lane === '' ? null : form.lane,
      kind: form.kind === '' ? null : form.kind,
      outcome: form.outcome === '' ? null : form.outcome,
      conflict: form.conflict === '' ? null : form.conflict === 'only',
      queue: null,
      flagged: null,
      from: range.from,
      to: range.to,
      cursor,
      limit,
    },
  };
}

export type Bucket = 'hour' | 'day' | 'week';

/** The gate sums hourly buckets for ranges up to 31 days only. */
export const HOURLY_MAX_DAYS = 31;

/** The finest bucket the gate allows for a range, never more than about 200 points. */
export function bucketFor(range: Range, now: number = Date.now()): Bucket {
  const from = range.from ? Date.parse(range.from) : null;
  const to = range.to ? Date.parse(range.to) : now;
  if (from === null) return 'week';
  const days = (to - from) / DAY_MS;
  if (days <= 7) return 'hour';
  if (days <= 200) return 'day';
  return 'week';
}

export function bucketAllowed(bucket: Bucket, range: Range, now: number = Date.now()): boolean {
  if (bucket !== 'hour') return true;
  if (!range.from) return false;
  const to = range.to ? Date.parse(range.to) : now;
  return (to - Date.parse(range.from)) / DAY_MS <= HOURLY_MAX_DAYS;
}

export interface ChartSeries {
  model: string;
  /** Override rate in percent per bucket; null where the model had no human decision. */
  rates: (number | null)[];
  decisions: number[];
  overrides: number[];
}

export interface ChartData {
  /** Bucket starts, RFC 3339, oldest first; shared by every series. */
  starts: string[];
  labels: string[];
  series: ChartSeries[];
}

export function bucketLabel(start: string, bucket: Bucket, timeZone?: string): string {
  const d = new Date(start);
  if (bucket === 'hour') {
    return d.toLocaleString('en-GB', { day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false, timeZone });
  }
  const day = d.toLocaleDateString('en-GB', { day: '2-digit', month: 'short', timeZone });
  return bucket === 'week' ? `week of ${day}` : day;
}

/**
 * The override rate per model version on one time axis: every bucket any version has, oldest
 * first, with gaps (null) where a version had no human decision in it, so a line is not drawn
 * through buckets that have no data.
 */
export function overrideChartData(report: OverrideReport, timeZone?: string): ChartData {
  const bucket = (['hour', 'day', 'week'].includes(report.bucket) ? report.bucket : 'day') as Bucket;
  const starts = [...new Set(report.series.flatMap((s) => s.points.map((p) => p.start)))].sort(
    (a, b) => Date.parse(a) - Date.parse(b),
  );
  const at = new Map(starts.map((s, i) => [s, i]));
  const series = [...report.series]
    .sort((a, b) => a.model.localeCompare(b.model))
    .map((s) => {
      const rates: (number | null)[] = starts.map(() => null);
      const decisions = starts.map(() => 0);
      const overrides = starts.map(() => 0);
      for (const p of s.points) {
        const i = at.get(p.start)!;
        decisions[i] = p.decisions;
        overrides[i] = p.overrides;
        rates[i] = p.decisions > 0 ? Math.round((p.overrides / p.decisions) * 1000) / 10 : null;
      }
      return { model: s.model, rates, decisions, overrides };
    });
  return { starts, labels: starts.map((s) => bucketLabel(s, bucket, timeZone)), series };
}

/** A share (0..1) in words; a dash when there is nothing to share out. */
export function share(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  const pct = x * 100;
  return `${pct >= 10 || pct === 0 ? Math.round(pct) : pct.toFixed(1)} %`;
}

/** A time on item in words: `850 ms`, `12 s`, `3 min 5 s`. */
export function timeOnItem(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
}

/** When the rubber-stamp signals become worth a supervisor's look. */
export const RUBBER_STAMP = {
  /** Share of approvals faster than the threshold. */
  fastShare: 0.3,
  /** With at least this many fast approvals (one or two fast ones prove nothing). */
  minFast: 5,
  /** Approvals in a row without a single correction or escalation. */
  longRun: 25,
} as const;

export interface Signal {
  kind: 'fast' | 'run' | 'sla';
  words: string;
}

/** What in a reviewer's figures suggests approving without looking, or missing deadlines. */
export function signals(r: ReviewerStats): Signal[] {
  const out: Signal[] = [];
  const rs = r.rubber_stamp;
  if ((rs.fast_approval_share ?? 0) >= RUBBER_STAMP.fastShare && rs.fast_approvals >= RUBBER_STAMP.minFast) {
    out.push({
      kind: 'fast',
      words: `${share(rs.fast_approval_share)} of approvals under ${rs.fast_seconds} s`,
    });
  }
  if (rs.longest_approval_run >= RUBBER_STAMP.longRun) {
    out.push({ kind: 'run', words: `${rs.longest_approval_run} approvals in a row` });
  }
  if (r.sla_breaches > 0 && r.decisions > 0 && r.sla_breaches / r.decisions >= 0.1) {
    out.push({ kind: 'sla', words: `${r.sla_breaches} past their deadline` });
  }
  return out;
}

export type SortKey = 'reviewer' | 'decisions' | 'time' | 'approve' | 'correct' | 'escalate' | 'agreement' | 'sla' | 'fast';

const sortValue: Record<SortKey, (r: ReviewerStats) => number | string> = {
  reviewer: (r) => r.reviewer,
  decisions: (r) => r.decisions,
  time: (r) => r.mean_time_on_item_ms ?? Infinity,
  approve: (r) => r.approve_share ?? -1,
  correct: (r) => r.correct_share ?? -1,
  escalate: (r) => r.escalate_share ?? -1,
  agreement: (r) => agreement(r) ?? 2,
  sla: (r) => r.sla_breaches,
  fast: (r) => r.rubber_stamp.fast_approval_share ?? -1,
};

/** Agreement with other reviewers over four-eyes and QA pairs together, or null without pairs. */
export function agreement(r: ReviewerStats): number | null {
  const pairs = r.four_eyes.pairs + r.qa.pairs;
  return pairs === 0 ? null : (r.four_eyes.agreed + r.qa.agreed) / pairs;
}

export function sortReviewers(rows: ReviewerStats[], key: SortKey, descending: boolean): ReviewerStats[] {
  const value = sortValue[key];
  return [...rows].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    const c = typeof x === 'string' ? x.localeCompare(String(y)) : (x as number) - (y as number);
    return (descending ? -c : c) || a.reviewer.localeCompare(b.reviewer);
  });
}

export const STAGE_WORDS: Record<TrailStage, string> = {
  output: 'Output received',
  routing: 'Routing',
  lease: 'Lease',
  decision: 'Decision',
  escalation: 'Escalation',
  release: 'Release',
  qa: 'QA',
  other: 'Other',
};

/** Whether everything the desk checked about one trail step held. */
export function stepVerified(step: TrailStep): boolean {
  return (
    step.inclusion.ok &&
    step.content.ok &&
    (step.decision === null || (step.decision.signature.ok && step.decision.key.ok))
  );
}

/** Every failed check of a step, in words. */
export function stepProblems(step: TrailStep): string[] {
  const out: string[] = [];
  if (!step.inclusion.ok) out.push(`inclusion: ${step.inclusion.detail}`);
  if (!step.content.ok) out.push(`content: ${step.content.detail}`);
  if (step.decision && !step.decision.signature.ok) out.push(`signature: ${step.decision.signature.detail}`);
  if (step.decision && !step.decision.key.ok) out.push(`key: ${step.decision.key.detail}`);
  return out;
}

export const PHASE_WORDS: Record<IntegrityProgress['phase'], string> = {
  checkpoints: 'Checking checkpoint signatures',
  consistency: 'Checking consistency with the checkpoints this desk saw',
  inclusion: 'Proving every decision and trail entry this desk holds',
};

/** The integrity check's progress as one bar over its three phases (0..1). */
export function integrityFraction(p: IntegrityProgress | null): number {
  if (!p) return 0;
  const order = ['checkpoints', 'consistency', 'inclusion'];
  const phase = Math.max(0, order.indexOf(p.phase));
  const within = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  return (phase + within) / order.length;
}

/** A reason a supervisor gives with an action: required, and at most what the desk accepts. */
export const MAX_REASON = 2000;

export function reasonProblem(reason: string): string | null {
  const r = reason.trim();
  if (r === '') return 'Give a reason: it is logged with the action and shown to other supervisors.';
  if (r.length > MAX_REASON) return `A reason has at most ${MAX_REASON} characters.`;
  return null;
}
