// The app's state and the actions on it. Components read these fields and call these methods; all
// backend calls go through ./backend.
import * as backend from './backend';
import { DeskFailure, toFailure } from './backend';
import { explain, type Explained } from './errors';
import type { DecisionKind } from './generated/DecisionKind';
import type { DecisionRecord } from './generated/DecisionRecord';
import type { CorrectionInput } from './generated/CorrectionInput';
import type { DeskStatus } from './generated/DeskStatus';
import type { ItemDetail } from './generated/ItemDetail';
import type { QueueRow } from './generated/QueueRow';
import type { SyncProgress } from './generated/SyncProgress';
import type { SyncReport } from './generated/SyncReport';
import { DecisionGuard, DWELL_MS, dwellOver } from './guard';
import { markSave, painted } from './perf';
import {
  applyFilter,
  compareRows,
  countRows,
  countsWithout,
  indexOfRow,
  isNoFilter,
  neighbourAt,
  nextAfterRemoval,
  nextAfterRemovalAt,
  NO_FILTER,
  sameQueue,
  sortRows,
  withoutIndex,
  type Counts,
  type QueueFilter,
  type Row,
} from './queue';

export type Phase = 'loading' | 'first-run' | 'ready' | 'failed';
export type Dialog = null | 'help' | 'correct' | 'escalate' | 'claim' | 'conflicts';

export interface Notice {
  kind: 'info' | 'error';
  title: string;
  text: string;
}

/** How many item details stay cached; enough for back-and-forth without holding 10 000. */
const CACHE_LIMIT = 64;
const STATUS_EVERY_MS = 5000;

const detailKey = (itemId: string, version: number) => `${itemId}@${version}`;

export class DeskState {
  phase = $state<Phase>('loading');
  startupFailure = $state<Explained | null>(null);
  status = $state.raw<DeskStatus | null>(null);
  rows = $state.raw<Row[]>([]);
  filter = $state<QueueFilter>({ ...NO_FILTER });
  /** Ticks every second for countdowns. */
  now = $state(Date.now());
  /** Ticks every 15 s: filtering and counts need no finer clock, and the list stays still. */
  coarseNow = $state(Date.now());
  selectedId = $state<string | null>(null);
  detail = $state.raw<ItemDetail | null>(null);
  detailFailure = $state<Explained | null>(null);
  dialog = $state<Dialog>(null);
  /** The item whose decision is being saved, to disable the buttons. */
  deciding = $state<string | null>(null);
  decideFailure = $state<Explained | null>(null);
  sync = $state.raw<SyncProgress | null>(null);
  syncing = $state(false);
  notice = $state<Notice | null>(null);
  conflictList = $state.raw<DecisionRecord[]>([]);
  /** The shown item has been on screen for DWELL_MS and takes decision keys (see guard.ts). */
  armed = $state(false);
  private shownAt = 0;
  private armTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * The rows the filter lets through, and the counts. Both follow `rows`, `filter` and
   * `coarseNow`; when `rows` changed only by the approval that removed one row (see
   * removeAndAdvance), they are the previous answers less that row instead of another pass
   * over the 10 000 rows.
   */
  visible = $derived.by(() => this.computeVisible(this.rows, this.filter, this.coarseNow));
  counts = $derived.by(() => this.computeCounts(this.rows, this.coarseNow));

  /** The last removal of a single row: `to` is `from` without `row`. */
  private removal: { from: readonly Row[]; to: readonly Row[]; row: Row } | null = null;
  private lastVisible: { rows: readonly Row[]; filter: QueueFilter; now: number; result: Row[] } | null = null;
  private lastCounts: { rows: readonly Row[]; now: number; result: Counts } | null = null;
  /** Rows by item id, for `rowOf`; rebuilt when `rows` is replaced other than by a removal. */
  private byId = new Map<string, Row>();
  private byIdOf: readonly Row[] | null = null;

  private readonly cache = new Map<string, ItemDetail>();
  private readonly loading = new Map<string, Promise<ItemDetail>>();
  private readonly guard = new DecisionGuard();
  private timers: ReturnType<typeof setInterval>[] = [];
  private unlisten: (() => void)[] = [];
  private listening: Promise<void> | null = null;
  private stopped = false;
  /** Status answers can arrive out of order; only the latest asked for is shown. */
  private statusAsked = 0;
  private statusShown = 0;

  async start(): Promise<void> {
    this.timers.push(
      setInterval(() => (this.now = Date.now()), 1000),
      setInterval(() => (this.coarseNow = Date.now()), 15000),
    );
    // Asked for with the status, not after it: the 10 000-entry queue is most of the time to
    // the first rows, and an unenrolled desk answers it with the same refusal.
    const queue = backend.queue();
    queue.catch(() => undefined);
    // Listening before anything else: the desk's background sync starts as soon as an account is
    // open (at enrollment too), and an event sent before the listener exists is lost.
    const listening = this.listenSync();
    try {
      await this.fetchStatus();
    } catch (raw) {
      const failure = toFailure(raw);
      if (failure.code === 'not_enrolled') {
        this.phase = 'first-run';
      } else {
        this.startupFailure = explain(failure);
        this.phase = 'failed';
      }
      return;
    }
    await this.enterReady(queue, listening);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unlisten) u();
    this.timers = [];
    this.unlisten = [];
  }

  async enroll(gateUrl: string, code: string, deviceName: string): Promise<void> {
    const name = deviceName.trim();
    // The shell starts the new account's sync before `enroll` answers: its end must find us
    // listening, or the status bar would say "never synced" until the next poll.
    const listening = this.listenSync();
    await listening;
    await backend.enroll(gateUrl.trim(), code.trim(), name === '' ? null : name);
    await this.fetchStatus();
    await this.enterReady(undefined, listening);
  }

  /** Asks for the desk's status and shows it, unless a later request's answer came first. */
  private async fetchStatus(): Promise<DeskStatus> {
    const asked = ++this.statusAsked;
    const status = await backend.status();
    if (asked > this.statusShown) {
      this.statusShown = asked;
      this.status = status;
    }
    return this.status ?? status;
  }

  private async enterReady(queue?: Promise<QueueRow[]>, listening = this.listenSync()): Promise<void> {
    this.phase = 'ready';
    this.timers.push(setInterval(() => void this.refreshStatus(), STATUS_EVERY_MS));
    await Promise.all([listening, this.refreshQueue(queue)]);
  }

  /** Listens to the background sync's events, once for the life of this state. */
  private listenSync(): Promise<void> {
    this.listening ??= Promise.all([
      backend.onSyncProgress((p) => {
        this.syncing = true;
        this.sync = p;
      }),
      backend.onSyncDone((result) => {
        this.syncing = false;
        this.sync = null;
        if ('failure' in result && result.failure.code !== 'gate_unreachable') {
          this.show(result.failure);
        }
        void this.afterSync('report' in result ? result.report : null);
      }),
    ]).then(
      (unlisten) => {
        if (this.stopped) for (const u of unlisten) u();
        else this.unlisten.push(...unlisten);
      },
      // Without events the app still works; the Sync button and polling cover it.
      (raw) => console.warn('sync events unavailable', raw),
    );
    return this.listening;
  }

  async refreshAll(): Promise<void> {
    await Promise.all([this.refreshStatus(), this.refreshQueue()]);
  }

  /**
   * A sync runs after every decision (the desk wakes it), so it must not reload 10 000 entries
   * each time: the queue is reloaded only when the gate ended leases, or when the desk's count
   * disagrees with the list (see refreshStatus).
   */
  private async afterSync(report: SyncReport | null): Promise<void> {
    if (this.phase === 'ready' && report && Number(report.withdrawn) + Number(report.superseded) > 0) {
      await this.refreshAll();
    } else {
      await this.refreshStatus();
    }
  }

  async refreshStatus(): Promise<void> {
    let status: DeskStatus;
    try {
      status = await this.fetchStatus();
    } catch (raw) {
      console.warn('status failed', raw);
      return;
    }
    // Leases that expire, or items another path added, show up as a different count.
    if (this.phase !== 'ready') return;
    if (Number(status.queue_count) !== this.rows.length && this.deciding === null) {
      void this.refreshQueue();
    }
  }

  async refreshQueue(asked: Promise<QueueRow[]> = backend.queue()): Promise<void> {
    try {
      const entries = await asked;
      // An unchanged queue keeps its array, so the list does not re-render for nothing.
      if (!sameQueue(this.rows, entries)) this.rows = sortRows(entries);
    } catch (raw) {
      this.show(toFailure(raw));
      return;
    }
    const shown = this.selectedId === null ? undefined : this.rowOf(this.selectedId);
    if (shown) {
      // A sync may have brought a newer version of the shown item.
      const entry = shown.entry;
      if (entry && this.detail && this.detail.entry.item_version !== entry.item_version) {
        void this.select(entry.item_id);
      }
    } else {
      void this.select(this.visible[0]?.entry.item_id ?? null);
    }
  }

  setFilter(patch: Partial<QueueFilter>): void {
    this.filter = { ...this.filter, ...patch };
    this.coarseNow = Date.now();
    if (this.visibleIndexOf(this.selectedId) < 0) {
      void this.select(this.visible[0]?.entry.item_id ?? null);
    }
  }

  private entryOf(itemId: string) {
    return this.rowOf(itemId)?.entry ?? null;
  }

  /** The detail of an item, from the cache when it is there, else loaded once (no duplicate calls). */
  private load(itemId: string): Promise<ItemDetail> {
    const entry = this.entryOf(itemId);
    const key = detailKey(itemId, entry?.item_version ?? -1);
    const cached = this.cache.get(key);
    if (cached) return Promise.resolve(cached);
    const pending = this.loading.get(key);
    if (pending) return pending;
    const promise = backend
      .item(itemId)
      .then((d) => {
        this.remember(detailKey(itemId, d.entry.item_version), d);
        return d;
      })
      .finally(() => this.loading.delete(key));
    this.loading.set(key, promise);
    return promise;
  }

  private remember(key: string, detail: ItemDetail): void {
    this.cache.delete(key);
    this.cache.set(key, detail);
    while (this.cache.size > CACHE_LIMIT) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }

  private computeVisible(rows: readonly Row[], filter: QueueFilter, now: number): Row[] {
    const f: QueueFilter = { lane: filter.lane, overdueOnly: filter.overdueOnly, text: filter.text };
    const last = this.lastVisible;
    const r = this.removal;
    let result: Row[];
    if (isNoFilter(f)) {
      result = rows as Row[];
    } else if (
      last !== null &&
      r !== null &&
      r.to === rows &&
      r.from === last.rows &&
      last.now === now &&
      last.filter.lane === f.lane &&
      last.filter.overdueOnly === f.overdueOnly &&
      last.filter.text === f.text
    ) {
      const index = indexOfRow(last.result, r.row);
      result = index < 0 ? last.result : withoutIndex(last.result, index);
    } else {
      result = applyFilter(rows, f, now);
    }
    this.lastVisible = { rows, filter: f, now, result };
    return result;
  }

  private computeCounts(rows: readonly Row[], now: number): Counts {
    const last = this.lastCounts;
    const r = this.removal;
    const result =
      last !== null && r !== null && r.to === rows && r.from === last.rows && last.now === now
        ? countsWithout(last.result, r.row, now)
        : countRows(rows, now);
    this.lastCounts = { rows, now, result };
    return result;
  }

  /** The queue row of an item, without a pass over the queue. */
  rowOf(itemId: string): Row | undefined {
    const rows = this.rows;
    if (this.byIdOf !== rows) {
      this.byId = new Map(rows.map((r) => [r.entry.item_id, r]));
      this.byIdOf = rows;
    }
    return this.byId.get(itemId);
  }

  /** Where an item is in the visible list, -1 when it is not there. */
  visibleIndexOf(itemId: string | null): number {
    if (itemId === null) return -1;
    const row = this.rowOf(itemId);
    return row ? indexOfRow(this.visible, row) : -1;
  }

  /** Shows an item. A cached detail paints synchronously; the neighbours are fetched ahead. */
  async select(itemId: string | null): Promise<void> {
    this.selectedId = itemId;
    this.decideFailure = null;
    if (itemId === null) {
      this.detail = null;
      this.detailFailure = null;
      return;
    }
    const entry = this.entryOf(itemId);
    const cached = entry ? this.cache.get(detailKey(itemId, entry.item_version)) : undefined;
    if (cached) {
      this.showDetail(cached);
    } else {
      try {
        const d = await this.load(itemId);
        if (this.selectedId !== itemId) return;
        this.showDetail(d);
      } catch (raw) {
        if (this.selectedId !== itemId) return;
        this.detail = null;
        this.detailFailure = explain(toFailure(raw));
      }
    }
    this.prefetchAround(itemId);
  }

  private showDetail(d: ItemDetail): void {
    const changed = this.detail?.entry.item_id !== d.entry.item_id;
    this.detail = d;
    this.detailFailure = null;
    if (!changed) return;
    this.shownAt = performance.now();
    this.armed = false;
    clearTimeout(this.armTimer);
    this.armTimer = setTimeout(() => (this.armed = true), DWELL_MS);
  }

  /** Whether a decision key may act now: the item can be decided and has been seen. */
  keysReady(now = performance.now()): boolean {
    return this.canDecide && dwellOver(this.shownAt, now);
  }

  private prefetchAround(itemId: string): void {
    const index = this.visibleIndexOf(itemId);
    for (const step of [1, -1] as const) {
      const id = neighbourAt(this.visible, index, step);
      if (id !== null && id !== itemId) this.load(id).catch(() => undefined);
    }
  }

  move(step: 1 | -1): void {
    const id = neighbourAt(this.visible, this.visibleIndexOf(this.selectedId), step);
    if (id !== null && id !== this.selectedId) void this.select(id);
  }

  /** Whether the shown item can take a decision right now (not in flight, not decided). */
  get canDecide(): boolean {
    const d = this.detail;
    if (!d || this.deciding !== null) return false;
    if (d.decided) return false;
    return !this.guard.isDone(detailKey(d.entry.item_id, d.entry.item_version));
  }

  /**
   * Saves a decision for the shown item. Returns true when saved. While it runs, further calls for
   * the same item are ignored (a double press makes one decision), and no other item takes a
   * decision until it is saved. Once saved, the entry leaves the queue and the next item is shown
   * from the prefetch cache. An approval from the keyboard or the button shows the next item at
   * once, while it is being saved: the signed write and its fsync then do not stand between the
   * keystroke and the next item. Should the desk refuse it, the item comes back, selected, with
   * the reason.
   */
  async decide(
    kind: DecisionKind,
    corrections: CorrectionInput[] = [],
    reasonCodes: string[] = [],
    comment: string | null = null,
  ): Promise<boolean> {
    const d = this.detail;
    if (!d) return false;
    if (kind === 'approve' && d.entry.lane === 'human_only') {
      this.notice = {
        kind: 'info',
        title: 'Nothing to approve',
        text: 'This item is human only: there is no AI proposal. Press C to set the outcome yourself.',
      };
      return false;
    }
    const itemId = d.entry.item_id;
    const key = detailKey(itemId, d.entry.item_version);
    if (this.deciding !== null || this.guard.isBusy(key) || this.guard.isDone(key)) return false;
    const visibleBefore = this.visible;
    const removed = this.rowOf(itemId);
    const ahead = kind === 'approve' && this.dialog === null;
    this.decideFailure = null;
    this.deciding = itemId;
    if (ahead) {
      this.removeAndAdvance(itemId, visibleBefore);
      // Signing and the durable write start once the next item is on screen, so they do not
      // take the two cores from its layout and paint.
      await painted();
    }
    const started = performance.now();
    let outcome: Awaited<ReturnType<DecisionGuard['run']>>;
    try {
      outcome = await this.guard.run(key, () =>
        backend.decide({ item_id: itemId, kind, corrections, reason_codes: reasonCodes, comment }),
      );
    } catch (raw) {
      const failure = toFailure(raw);
      if (['already_decided', 'lease_lost', 'not_found'].includes(failure.code)) {
        this.show(failure);
        this.dialog = null;
        if (!ahead) this.removeAndAdvance(itemId, visibleBefore);
      } else {
        if (ahead) this.putBack(removed);
        this.decideFailure = explain(failure);
        if (this.dialog === null) this.show(failure);
      }
      return false;
    } finally {
      this.deciding = null;
    }
    markSave(performance.now() - started);
    if (!outcome.ran) {
      if (ahead) this.putBack(removed);
      return false;
    }
    this.dialog = null;
    if (!ahead) this.removeAndAdvance(itemId, visibleBefore);
    void this.refreshStatus();
    return true;
  }

  /**
   * Takes a decided item out of the queue and shows the next one. The row is found by binary
   * search and the visible list and the counts follow by removing it (see computeVisible), so
   * this costs no pass over the 10 000 rows beyond copying the arrays.
   */
  private removeAndAdvance(itemId: string, visibleBefore: readonly Row[]): void {
    const row = this.rowOf(itemId);
    let next = this.selectedId;
    if (this.selectedId === itemId) {
      const index = row ? indexOfRow(visibleBefore, row) : -1;
      next = index < 0 ? nextAfterRemoval(visibleBefore, itemId) : nextAfterRemovalAt(visibleBefore, index);
    }
    const from = this.rows;
    const index = row ? indexOfRow(from, row) : -1;
    if (row && index >= 0) {
      const to = withoutIndex(from, index);
      this.removal = { from, to, row };
      this.byId.delete(itemId);
      this.byIdOf = to;
      this.rows = to;
    } else if (row) {
      this.rows = from.filter((r) => r.entry.item_id !== itemId);
    }
    void this.select(next);
  }

  /** Returns an item whose approval was refused to the queue and to the screen. */
  private putBack(row: Row | undefined): void {
    if (!row) return;
    if (!this.rowOf(row.entry.item_id)) {
      this.rows = [...this.rows, row].sort(compareRows);
    }
    void this.select(row.entry.item_id);
  }

  async runSync(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    this.sync = { phase: 'push', done: 0, total: 0 } as unknown as SyncProgress;
    try {
      const report = await backend.sync((p) => (this.sync = p));
      const n = (x: unknown) => Number(x ?? 0);
      const parts = [
        `${n(report.applied)} applied`,
        n(report.conflicts) ? `${n(report.conflicts)} in conflict` : '',
        n(report.rejected) + n(report.refused) ? `${n(report.rejected) + n(report.refused)} refused` : '',
        n(report.pulled) ? `${n(report.pulled)} items updated` : '',
        n(report.withdrawn) ? `${n(report.withdrawn)} withdrawn` : '',
      ].filter(Boolean);
      this.notice = { kind: 'info', title: 'Synced', text: parts.join(', ') + '.' };
    } catch (raw) {
      this.show(toFailure(raw));
    } finally {
      this.syncing = false;
      this.sync = null;
    }
    // Asked for by the reviewer: reload everything.
    await this.refreshAll();
  }

  async claimItems(limit: number, offlineHours: number | null): Promise<boolean> {
    try {
      const report = await backend.claim(limit, offlineHours);
      this.notice = {
        kind: 'info',
        title: report.claimed === 1 ? 'Claimed 1 item' : `Claimed ${report.claimed} items`,
        text: report.offline
          ? `Checked out for offline work for ${offlineHours} hours: they can be decided without the gate.`
          : 'Added to your queue.',
      };
    } catch (raw) {
      this.show(toFailure(raw));
      return false;
    }
    await this.refreshAll();
    return true;
  }

  async loadConflicts(): Promise<void> {
    try {
      this.conflictList = await backend.conflicts();
    } catch (raw) {
      this.show(toFailure(raw));
    }
  }

  show(failure: DeskFailure): void {
    const e = explain(failure);
    this.notice = { kind: 'error', title: e.title, text: [e.detail, e.help].filter(Boolean).join(' ') };
  }
}
