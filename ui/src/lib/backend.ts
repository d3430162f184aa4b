// The only module that talks to Tauri. Everything else in the UI calls these functions, so the
// command names, argument shapes and error shape live in one place.
import { Channel, invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

import type { Account } from './generated/Account';
import type { ClaimReport } from './generated/ClaimReport';
import type { DecideRequest } from './generated/DecideRequest';
import type { DecisionRecord } from './generated/DecisionRecord';
import type { DeskStatus } from './generated/DeskStatus';
import type { ItemDetail } from './generated/ItemDetail';
import type { PurgeReport } from './generated/PurgeReport';
import type { QueueRow } from './generated/QueueRow';
import type { SavedDecision } from './generated/SavedDecision';
import type { SyncProgress } from './generated/SyncProgress';
import type { SyncReport } from './generated/SyncReport';
import type { BreakerState } from './generated/BreakerState';
import type { BundleExport } from './generated/BundleExport';
import type { CorrectedFields } from './generated/CorrectedFields';
import type { DecisionFilter } from './generated/DecisionFilter';
import type { DecisionPage } from './generated/DecisionPage';
import type { FlagRecord } from './generated/FlagRecord';
import type { IntegrityProgress } from './generated/IntegrityProgress';
import type { IntegrityReport } from './generated/IntegrityReport';
import type { LeaseChange } from './generated/LeaseChange';
import type { LeaseFilter } from './generated/LeaseFilter';
import type { ModelFilter } from './generated/ModelFilter';
import type { ModelsReport } from './generated/ModelsReport';
import type { OpenLease } from './generated/OpenLease';
import type { OverrideReport } from './generated/OverrideReport';
import type { RereviewResult } from './generated/RereviewResult';
import type { ReviewerFilter } from './generated/ReviewerFilter';
import type { ReviewerReport } from './generated/ReviewerReport';
import type { TrailView } from './generated/TrailView';

/** Codes of the desk plus `internal` for anything that did not come back as `{code, message}`. */
export type FailureCode = string;

/** A refused or failed command, always with a code the UI can branch on and words for people. */
export class DeskFailure extends Error {
  readonly code: FailureCode;
  constructor(code: FailureCode, message: string) {
    super(message);
    this.name = 'DeskFailure';
    this.code = code;
  }
}

/**
 * Turns whatever a rejected `invoke` gives into a DeskFailure. The shell rejects with
 * `{code, message}`; Tauri itself rejects with a plain string (unknown command, bad arguments), and
 * a thrown JS error can surface too: those become `internal` so no failure is ever shown as
 * "[object Object]" or swallowed.
 */
export function toFailure(raw: unknown): DeskFailure {
  if (raw instanceof DeskFailure) return raw;
  if (raw !== null && typeof raw === 'object') {
    const { code, message } = raw as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && code.length > 0) {
      return new DeskFailure(code, typeof message === 'string' ? message : '');
    }
    if (raw instanceof Error) return new DeskFailure('internal', raw.message);
    if (typeof message === 'string') return new DeskFailure('internal', message);
  }
  if (typeof raw === 'string') return new DeskFailure('internal', raw);
  return new DeskFailure('internal', String(raw));
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw) {
    throw toFailure(raw);
  }
}

export const accounts = () => call<Account[]>('accounts');

/** `deviceName` null lets the shell name the device after the computer's host name. */
export const enroll = (gateUrl: string, code: string, deviceName: string | null) =>
  call<Account>('enroll', { gateUrl, code, deviceName });

export const status = () => call<DeskStatus>('status');

/** `offlineHours` null claims with a normal lease; a number asks for an offline checkout. */
export const claim = (limit: number, offlineHours: number | null) =>
  call<ClaimReport>('claim', { limit, offlineHours });

/** The queue list's rows; an item's lease, model and rule come with `item`. */
export const queue = () => call<QueueRow[]>('queue');

export const item = (itemId: string) => call<ItemDetail>('item', { itemId });

export const decide = (request: DecideRequest) => call<SavedDecision>('decide', { request });

export function sync(onProgress: (p: SyncProgress) => void): Promise<SyncReport> {
  const channel = new Channel<SyncProgress>();
  channel.onmessage = onProgress;
  return call<SyncReport>('sync', { onProgress: channel });
}

export const decisions = (limit: number) => call<DecisionRecord[]>('decisions', { limit });

export const conflicts = () => call<DecisionRecord[]>('conflicts');

export const purge = (retentionDays: number) => call<PurgeReport>('purge', { retentionDays });

// The supervisor mode's commands. The desk refuses them with `not_supervisor` for other roles
// before asking the gate; the window offers them to supervisors and admins only.

/** An item's decision trail, every part verified by this desk. */
export const trail = (itemId: string) => call<TrailView>('supervision_trail', { itemId });

export const searchDecisions = (filter: DecisionFilter) =>
  call<DecisionPage>('supervision_decisions', { filter });

export const rereview = (decisionId: string, reason: string) =>
  call<RereviewResult>('supervision_rereview', { decisionId, reason });

export const flagDecision = (decisionId: string, reason: string) =>
  call<FlagRecord>('supervision_flag', { decisionId, reason });

export const reviewerStats = (filter: ReviewerFilter) =>
  call<ReviewerReport>('supervision_reviewers', { filter });

export const modelStatuses = () => call<ModelsReport>('supervision_models');

export const overrideRates = (filter: ModelFilter) =>
  call<OverrideReport>('supervision_override_rate', { filter });

export const correctedFields = (filter: ModelFilter) =>
  call<CorrectedFields>('supervision_corrected_fields', { filter });

export const resetBreaker = (model: string, reason: string) =>
  call<BreakerState>('supervision_reset_breaker', { model, reason });

export const openLeases = (filter: LeaseFilter) => call<OpenLease[]>('supervision_leases', { filter });

export const withdrawLease = (leaseId: string, reason: string) =>
  call<LeaseChange>('supervision_withdraw', { leaseId, reason });

export const reassignLease = (leaseId: string, toUser: string) =>
  call<LeaseChange>('supervision_reassign', { leaseId, toUser });

/** The whole-log integrity check, with its progress. */
export function checkLog(onProgress: (p: IntegrityProgress) => void): Promise<IntegrityReport> {
  const channel = new Channel<IntegrityProgress>();
  channel.onmessage = onProgress;
  return call<IntegrityReport>('log_check', { onProgress: channel });
}

/** Writes and verifies the audit bundle of [from, to) in a new directory inside `dir`. */
export const exportBundle = (dir: string, from: string, to: string) =>
  call<BundleExport>('bundle_export', { dir, from, to });

/** The system's folder picker, shown by the shell; null when cancelled. */
export const chooseBundleDir = () => call<string | null>('bundle_choose_dir');

/** Progress of the background sync the desk runs on its own. */
export function onSyncProgress(handler: (p: SyncProgress) => void): Promise<UnlistenFn> {
  return listen<SyncProgress>('sync-progress', (event) => handler(event.payload));
}

/**
 * The background sync finished. The payload is a SyncReport on success; a failure is reported as a
 * DeskFailure (the shell sends `{code, message}` for it, possibly wrapped as `{error: ...}`).
 */
export function onSyncDone(
  handler: (result: { report: SyncReport } | { failure: DeskFailure }) => void,
): Promise<UnlistenFn> {
  return listen<unknown>('sync-done', (event) => handler(syncDonePayload(event.payload)));
}

export function syncDonePayload(
  payload: unknown,
): { report: SyncReport } | { failure: DeskFailure } {
  if (payload !== null && typeof payload === 'object') {
    const p = payload as Record<string, unknown>;
    if ('Ok' in p) return { report: p.Ok as SyncReport };
    if ('ok' in p) return { report: p.ok as SyncReport };
    if ('Err' in p) return { failure: toFailure(p.Err) };
    if ('error' in p) return { failure: toFailure(p.error) };
    if (typeof p.code === 'string') return { failure: toFailure(p) };
    return { report: p as unknown as SyncReport };
  }
  return { failure: toFailure(payload) };
}
