// The supervisor mode's state and actions. Loaded only when a supervisor or admin opens the
// mode (App.svelte imports the view dynamically); every call goes through ./backend.
import * as backend from './backend';
import type { Notice } from './desk.svelte';
import { toFailure } from './backend';
import { explain, type Explained } from './errors';
import type { BundleExport } from './generated/BundleExport';
import type { CorrectedFields } from './generated/CorrectedFields';
import type { DecisionSummary } from './generated/DecisionSummary';
import type { IntegrityProgress } from './generated/IntegrityProgress';
import type { IntegrityReport } from './generated/IntegrityReport';
import type { ModelsReport } from './generated/ModelsReport';
import type { OpenLease } from './generated/OpenLease';
import type { OverrideReport } from './generated/OverrideReport';
import type { ReviewerReport } from './generated/ReviewerReport';
import type { TrailView } from './generated/TrailView';
import {
  bucketAllowed,
  bucketFor,
  dayRange,
  EMPTY_SEARCH,
  filterFromForm,
  lastDays,
  reasonProblem,
  sortReviewers,
  type Bucket,
  type SearchForm,
  type SortKey,
} from './supervision';

export type Tab = 'decisions' | 'reviewers' | 'models' | 'leases' | 'integrity';

export const TABS: { id: Tab; words: string }[] = [
  { id: 'decisions', words: 'Decisions' },
  { id: 'reviewers', words: 'Reviewers' },
  { id: 'models', words: 'Models' },
  { id: 'leases', words: 'Open leases' },
  { id: 'integrity', words: 'Log & audit' },
];

/** An action that needs a reason (or a reviewer's name) before it is sent. */
export type PendingAction =
  | { kind: 'rereview' | 'flag'; decisionId: string; what: string }
  | { kind: 'reset'; model: string }
  | { kind: 'withdraw' | 'reassign'; lease: OpenLease };

const explained = (raw: unknown) => explain(toFailure(raw));

export class SupervisorState {
  tab = $state<Tab>('decisions');
  notice = $state<Notice | null>(null);

  form = $state<SearchForm>({ ...EMPTY_SEARCH });
  formError = $state<string | null>(null);
  results = $state.raw<DecisionSummary[]>([]);
  nextCursor = $state<string | null>(null);
  searched = $state(false);
  searching = $state(false);
  searchFailure = $state.raw<Explained | null>(null);
  /** The filter of the shown results, for the next page. */
  private shownForm: SearchForm = { ...EMPTY_SEARCH };

  trailItem = $state<string | null>(null);
  trail = $state.raw<TrailView | null>(null);
  trailFailure = $state.raw<Explained | null>(null);

  reviewerRange = $state(lastDays(30));
  fastSeconds = $state(5);
  reviewers = $state.raw<ReviewerReport | null>(null);
  reviewersLoading = $state(false);
  reviewersFailure = $state.raw<Explained | null>(null);
  sortKey = $state<SortKey>('decisions');
  descending = $state(true);
  reviewerRows = $derived(sortReviewers(this.reviewers?.reviewers ?? [], this.sortKey, this.descending));

  modelRange = $state(lastDays(14));
  bucket = $state<Bucket>('day');
  models = $state.raw<ModelsReport | null>(null);
  overrides = $state.raw<OverrideReport | null>(null);
  fields = $state.raw<CorrectedFields | null>(null);
  modelsLoading = $state(false);
  modelsFailure = $state.raw<Explained | null>(null);

  leases = $state.raw<OpenLease[] | null>(null);
  leaseReviewer = $state('');
  leaseOffline = $state<'' | 'offline' | 'online'>('');
  leasesLoading = $state(false);
  leasesFailure = $state.raw<Explained | null>(null);

  integrityRunning = $state(false);
  integrityProgress = $state.raw<IntegrityProgress | null>(null);
  integrity = $state.raw<IntegrityReport | null>(null);
  integrityFailure = $state.raw<Explained | null>(null);

  bundleDir = $state('');
  bundleRange = $state(lastDays(7));
  exporting = $state(false);
  bundle = $state.raw<BundleExport | null>(null);
  bundleFailure = $state.raw<Explained | null>(null);

  action = $state.raw<PendingAction | null>(null);
  actionBusy = $state(false);
  actionFailure = $state<string | null>(null);

  private loaded = new Set<Tab>();

  /** Shows a tab, loading its data the first time. */
  open(tab: Tab): void {
    this.tab = tab;
    if (this.loaded.has(tab)) return;
    this.loaded.add(tab);
    if (tab === 'decisions') void this.search();
    else if (tab === 'reviewers') void this.loadReviewers();
    else if (tab === 'models') void this.loadModels();
    else if (tab === 'leases') void this.loadLeases();
  }

  /** Runs the search form from its first page, or appends the next page (`more`). */
  async search(more = false): Promise<void> {
    const form = more ? this.shownForm : { ...this.form };
    const built = filterFromForm(form, more ? this.nextCursor : null);
    if ('error' in built) {
      this.formError = built.error;
      return;
    }
    this.formError = null;
    this.searching = true;
    this.searchFailure = null;
    try {
      const page = await backend.searchDecisions(built.filter);
      this.shownForm = form;
      this.results = more ? [...this.results, ...page.decisions] : page.decisions;
      this.nextCursor = page.next_cursor ?? null; // absent on the last page
      this.searched = true;
    } catch (raw) {
      this.searchFailure = explained(raw);
    } finally {
      this.searching = false;
    }
  }

  /** The decisions of one reviewer, from the reviewer table. */
  searchReviewer(reviewer: string): void {
    this.form = { ...EMPTY_SEARCH, reviewer };
    this.closeTrail();
    this.tab = 'decisions';
    this.loaded.add('decisions');
    void this.search();
  }

  clearSearch(): void {
    this.form = { ...EMPTY_SEARCH };
    void this.search();
  }

  /** Opens an item's decision trail, verified by the desk. */
  async openTrail(itemId: string): Promise<void> {
    this.trailItem = itemId;
    this.trail = null;
    this.trailFailure = null;
    try {
      const view = await backend.trail(itemId);
      if (this.trailItem === itemId) this.trail = view;
    } catch (raw) {
      if (this.trailItem === itemId) this.trailFailure = explained(raw);
    }
  }

  closeTrail(): void {
    this.trailItem = null;
    this.trail = null;
    this.trailFailure = null;
  }

  async loadReviewers(): Promise<void> {
    const range = dayRange(this.reviewerRange.from, this.reviewerRange.to);
    if ('error' in range) {
      this.reviewersFailure = { code: 'invalid_input', title: 'Invalid dates', help: range.error, detail: '' };
      return;
    }
    this.reviewersLoading = true;
    this.reviewersFailure = null;
    try {
      this.reviewers = await backend.reviewerStats({ reviewer: null, from: range.from, to: range.to, fast_seconds: this.fastSeconds });
    } catch (raw) {
      this.reviewersFailure = explained(raw);
    } finally {
      this.reviewersLoading = false;
    }
  }

  sortBy(key: SortKey): void {
    if (this.sortKey === key) this.descending = !this.descending;
    else {
      this.sortKey = key;
      this.descending = key !== 'reviewer';
    }
  }

  /** Model versions with their breakers, the override-rate chart and the corrected fields. */
  async loadModels(): Promise<void> {
    const range = dayRange(this.modelRange.from, this.modelRange.to);
    if ('error' in range) {
      this.modelsFailure = { code: 'invalid_input', title: 'Invalid dates', help: range.error, detail: '' };
      return;
    }
    if (!bucketAllowed(this.bucket, range)) this.bucket = bucketFor(range);
    const filter = { model: null, from: range.from, to: range.to, bucket: this.bucket };
    this.modelsLoading = true;
    this.modelsFailure = null;
    try {
      const [models, overrides, fields] = await Promise.all([
        backend.modelStatuses(),
        backend.overrideRates(filter),
        backend.correctedFields(filter),
      ]);
      this.models = models;
      this.overrides = overrides;
      this.fields = fields;
    } catch (raw) {
      this.modelsFailure = explained(raw);
    } finally {
      this.modelsLoading = false;
    }
  }

  async loadLeases(): Promise<void> {
    this.leasesLoading = true;
    this.leasesFailure = null;
    try {
      this.leases = await backend.openLeases({
        reviewer: this.leaseReviewer.trim() === '' ? null : this.leaseReviewer.trim(),
        offline: this.leaseOffline === '' ? null : this.leaseOffline === 'offline',
        queue: null,
      });
    } catch (raw) {
      this.leasesFailure = explained(raw);
    } finally {
      this.leasesLoading = false;
    }
  }

  /** The whole-log integrity check, with its progress. */
  async checkLog(): Promise<void> {
    if (this.integrityRunning) return;
    this.integrityRunning = true;
    this.integrityProgress = null;
    this.integrityFailure = null;
    this.integrity = null;
    try {
      this.integrity = await backend.checkLog((p) => (this.integrityProgress = p));
    } catch (raw) {
      this.integrityFailure = explained(raw);
    } finally {
      this.integrityRunning = false;
    }
  }

  async chooseBundleDir(): Promise<void> {
    try {
      const dir = await backend.chooseBundleDir();
      if (dir !== null) this.bundleDir = dir;
    } catch (raw) {
      this.bundleFailure = explained(raw);
    }
  }

  async exportBundle(): Promise<void> {
    if (this.exporting) return;
    this.bundle = null;
    this.bundleFailure = null;
    const range = dayRange(this.bundleRange.from, this.bundleRange.to);
    const problem =
      this.bundleDir.trim() === ''
        ? 'Choose or type the folder to write the bundle into.'
        : 'error' in range
          ? range.error
          : range.from === null || range.to === null
            ? 'Give both the first and the last day.'
            : null;
    if (problem !== null || 'error' in range) {
      this.bundleFailure = { code: 'invalid_input', title: 'Cannot export yet', help: problem ?? '', detail: '' };
      return;
    }
    this.exporting = true;
    try {
      this.bundle = await backend.exportBundle(this.bundleDir.trim(), range.from!, range.to!);
    } catch (raw) {
      this.bundleFailure = explained(raw);
    } finally {
      this.exporting = false;
    }
  }

  ask(action: PendingAction): void {
    this.actionFailure = null;
    this.action = action;
  }

  cancelAction(): void {
    if (!this.actionBusy) this.action = null;
  }

  /** Sends the pending action with its reason (for a reassignment: the reviewer's name). */
  async confirm(text: string): Promise<boolean> {
    const action = this.action;
    if (!action || this.actionBusy) return false;
    const problem =
      action.kind === 'reassign'
        ? text.trim() === ''
          ? 'Name the reviewer to hand the item to.'
          : null
        : reasonProblem(text);
    if (problem) {
      this.actionFailure = problem;
      return false;
    }
    this.actionBusy = true;
    this.actionFailure = null;
    try {
      const title = await this.send(action, text.trim());
      this.action = null;
      this.notice = { kind: 'info', title, text: '' };
      return true;
    } catch (raw) {
      const e = explained(raw);
      this.actionFailure = `${e.title}. ${e.detail}`.trim();
      return false;
    } finally {
      this.actionBusy = false;
    }
  }

  private async send(action: PendingAction, text: string): Promise<string> {
    switch (action.kind) {
      case 'rereview': {
        const r = await backend.rereview(action.decisionId, text);
        return `Sent for re-review: QA item ${r.qa.item_id.slice(0, 8)}… for someone else to decide`;
      }
      case 'flag': {
        await backend.flagDecision(action.decisionId, text);
        this.results = this.results.map((d) => (d.decision_id === action.decisionId ? { ...d, flags: d.flags + 1 } : d));
        if (this.trailItem) void this.openTrail(this.trailItem);
        return 'Decision flagged';
      }
      case 'reset': {
        await backend.resetBreaker(action.model, text);
        void this.loadModels();
        return `Circuit breaker of ${action.model} reset`;
      }
      case 'withdraw': {
        await backend.withdrawLease(action.lease.lease_id, text);
        this.leases = (this.leases ?? []).filter((l) => l.lease_id !== action.lease.lease_id);
        return `Lease of ${action.lease.subject} withdrawn from ${action.lease.reviewer}`;
      }
      case 'reassign': {
        await backend.reassignLease(action.lease.lease_id, text);
        void this.loadLeases();
        return `${action.lease.subject} handed to ${text}`;
      }
    }
  }
}

let shared: SupervisorState | null = null;

/** The supervisor mode's state, made on first use and kept while the window lives. */
export function supervisorState(): SupervisorState {
  shared ??= new SupervisorState();
  return shared;
}
