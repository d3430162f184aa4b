import type { QueueEntry } from '../src/lib/generated/QueueEntry';
import type { FieldSpec } from '../src/lib/generated/FieldSpec';

export function entry(over: Partial<QueueEntry> = {}): QueueEntry {
  return {
    item_id: 'id-1',
    item_version: 1,
    lease_id: 'lease-1',
    subject: 'application-000001',
    model: 'credit-scorer@2.3.0',
    lane: 'review',
    amount: 12000,
    proposal_summary: 'approve 12 000 / 36 months',
    confidence: 0.8,
    due_at: '2026-11-24T10:00:00Z',
    received_at: '2026-11-24T08:00:00Z',
    lease_expires_at: '2026-11-24T18:00:00Z',
    offline: false,
    rule: 'large-amount-review',
    escalation_level: 0,
    ...over,
  };
}

// Integer bounds typed loosely: ts-rs renders i64 as bigint, the wire carries JSON numbers.
export const SCHEMA = [
  { name: 'decision', label: 'Decision', type: 'choice', values: ['approve', 'decline'] },
  { name: 'amount', label: 'Amount (EUR)', type: 'integer', min: 250, max: 20000 },
  { name: 'term_months', label: 'Term (months)', type: 'integer', min: 4, max: 72 },
  { name: 'rate', label: 'Rate', type: 'number', min: 0, max: 0.25 },
  { name: 'note', label: 'Note', type: 'text', max_len: 5 },
] as unknown as FieldSpec[];
