// Answers of the supervisor commands, shaped as the desk's generated types.
import type { DecisionSummary } from '../src/lib/generated/DecisionSummary';
import type { OpenLease } from '../src/lib/generated/OpenLease';
import type { ReviewerStats } from '../src/lib/generated/ReviewerStats';
import type { TrailStep } from '../src/lib/generated/TrailStep';
import type { TrailView } from '../src/lib/generated/TrailView';

export const pass = (detail = 'ok') => ({ ok: true, detail });
export const fail = (detail: string) => ({ ok: false, detail });

export function summary(over: Partial<DecisionSummary> = {}): DecisionSummary {
  return {
    decision_id: 'd-1',
    log_index: 12,
    logged_at: '2026-11-30T10:00:00Z',
    decided_at: '2026-11-30T09:59:58Z',
    reviewer: 'rita.reviewer',
    user_id: 'u-rita',
    device_id: 'dev-1',
    item_id: 'item-1',
    item_version: 1,
    queue: 'review',
    kind: 'approve',
    outcome: 'applied',
    outcome_code: null,
    model: 'credit-scorer@2.3.0',
    lane: 'review',
    rule: 'large-amount-review',
    policy_version: 1,
    time_on_item_ms: 4200,
    due_at: '2026-11-30T20:00:00Z',
    sla_breached: false,
    overrode: false,
    changed_fields: [],
    flags: 0,
    ...over,
  };
}

export function lease(over: Partial<OpenLease> = {}): OpenLease {
  return {
    lease_id: 'lease-1',
    item_id: 'item-1',
    item_version: 1,
    queue: 'review',
    lane: 'review',
    subject: 'application-000001',
    epoch: 1,
    reviewer: 'rita.reviewer',
    user_id: 'u-rita',
    device_id: 'dev-1',
    device_name: 'rita laptop',
    leased_at: '2026-11-30T08:00:00Z',
    expires_at: '2026-11-30T16:00:00Z',
    offline: true,
    lapsed: false,
    due_at: '2026-11-30T20:00:00Z',
    ...over,
  };
}

export function reviewer(over: Partial<ReviewerStats> = {}): ReviewerStats {
  return {
    reviewer: 'rita.reviewer',
    user_id: 'u-rita',
    role: 'reviewer',
    decisions: 40,
    applied: 40,
    conflicts: 0,
    rejected: 0,
    approve: 30,
    correct: 8,
    escalate: 2,
    approve_share: 0.75,
    correct_share: 0.2,
    escalate_share: 0.05,
    mean_time_on_item_ms: 42_000,
    time_on_item: { upper_ms: [5000, null], counts: [3, 37] },
    sla_breaches: 0,
    four_eyes: { pairs: 4, agreed: 3, rate: 0.75 },
    qa: { pairs: 0, agreed: 0, rate: null },
    rubber_stamp: { fast_seconds: 5, fast_approvals: 3, fast_approval_share: 0.1, longest_approval_run: 6 },
    ...over,
  };
}

export function step(over: Partial<TrailStep> = {}): TrailStep {
  return {
    stage: 'output',
    index: 3,
    kind: 'output_received',
    at: '2026-11-30T08:00:00Z',
    actor: 'credit-scoring',
    summary: 'output o-1 for application-000001',
    entry: '{"kind":"output_received"}',
    inclusion: pass('proven in the tree of 40'),
    content: pass(),
    decision: null,
    ...over,
  };
}

export function decisionStep(over: Partial<NonNullable<TrailStep['decision']>> = {}): TrailStep {
  return step({
    stage: 'decision',
    index: 9,
    kind: 'decided',
    actor: 'rita.reviewer',
    summary: 'approve by rita.reviewer',
    decision: {
      decision_id: 'd-1',
      reviewer: 'rita.reviewer',
      kind: 'approve',
      outcome: 'applied',
      outcome_code: null,
      item_version: 1,
      logged_at: '2026-11-30T10:00:00Z',
      jws: 'a.b.c',
      payload: '{"decision_id":"d-1"}',
      key_id: 'k-1',
      key_status: 'active',
      signature: pass('EdDSA signature verified'),
      key: pass('enrolled at entry #2'),
      flags: [],
      ...over,
    },
  });
}

export function trail(steps: TrailStep[], over: Partial<TrailView> = {}): TrailView {
  return {
    item: {
      item_id: 'item-1',
      subject: 'application-000001',
      queue: 'review',
      status: 'released',
      lane: 'review',
      current_version: 1,
      escalation_level: 0,
      approvals_required: 1,
      authority_required: 12000,
      due_at: '2026-11-30T20:00:00Z',
      outcome: { decision: 'approve', amount: 12000 },
      model: 'credit-scorer@2.3.0',
    },
    qa: null,
    qa_items: [],
    checkpoint: {
      size: 40,
      root_hex: 'ab'.repeat(32),
      note: 'note',
      signature: pass('signed'),
      consistency: pass('consistent'),
    },
    steps,
    missing: [],
    verified: true,
    failures: 0,
    ...over,
  };
}
