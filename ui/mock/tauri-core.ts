// Test-only stand-in for @tauri-apps/api/core, used by `vite build --mode mock` to look at the UI in
// a plain browser. It fakes the desk with generated German-credit-like items. Never in the real build.
// URL parameters: ?state=first-run | ?n=<items> | ?offline=1 | ?fail=<command>:<code>
import { emitMock } from './tauri-event';

const params = new URLSearchParams(location.search);
const N = Number(params.get('n') ?? '10000');
let enrolled = params.get('state') !== 'first-run';
const fail = params.get('fail');

export class Channel<T> {
  onmessage: (m: T) => void = () => undefined;
}

let seed = 42;
function rnd(): number {
  seed = (seed * 1664525 + 1013904223) % 4294967296;
  return seed / 4294967296;
}
const pick = <T,>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;

const PURPOSES = ['car (new)', 'car (used)', 'furniture/equipment', 'radio/television', 'education', 'business', 'repairs'];
const STATUS = ['... < 0 DM', '0 <= ... < 200 DM', 'no checking account', '... >= 200 DM'];
const PERSONAL = ['male : single', 'female : divorced/separated/married', 'male : divorced/separated', 'male : married/widowed'];
const HISTORY = ['existing credits paid back duly till now', 'critical account/ other credits existing (not at this bank)', 'delay in paying off in the past'];
const FEATURES = [
  'status_of_existing_checking_account', 'duration_in_month', 'credit_history', 'purpose', 'credit_amount',
  'savings_account_and_bonds', 'installment_rate_in_percentage_of_disposable_income', 'personal_status_and_sex',
  'age_in_years', 'housing', 'number_of_existing_credits_at_this_bank', 'foreign_worker',
];
const PROTECTED = ['personal_status_and_sex', 'age_in_years', 'foreign_worker'];
const REASONS = [
  { code: 'R-income', text: 'Income documents contradict the application' },
  { code: 'R-amount', text: 'Amount too high for the repayment capacity' },
  { code: 'R-term', text: 'Term does not match the purpose' },
  { code: 'R-protected', text: 'Model relies on a protected attribute' },
  { code: 'R-authority', text: 'Above my authority limit' },
  { code: 'R-other', text: 'Other (explain in the comment)' },
];
const HOSTILE = '<img src=x onerror=alert(1)><script>alert(1)</script>';

const now = Date.now();
type Any = Record<string, any>;
const items: Any[] = [];
for (let i = 0; i < N; i++) {
  const lane = i % 9 === 4 ? 'human_only' : 'review';
  const amount = Math.round(250 + rnd() * 18000);
  const term = pick([6, 12, 18, 24, 36, 48, 60]);
  const p = 0.3 + rnd() * 0.65;
  const decision = p >= 0.6 ? 'approve' : 'decline';
  const dueOffset = (rnd() * 30 - 3) * 3600 * 1000;
  const input: Any = {
    status_of_existing_checking_account: pick(STATUS), duration_in_month: term, credit_history: pick(HISTORY),
    purpose: pick(PURPOSES), credit_amount: amount, savings_account_and_bonds: '... < 100 DM',
    installment_rate_in_percentage_of_disposable_income: 1 + Math.floor(rnd() * 4), personal_status_and_sex: pick(PERSONAL),
    age_in_years: 19 + Math.floor(rnd() * 50), housing: pick(['own', 'rent', 'for free']),
    number_of_existing_credits_at_this_bank: 1 + Math.floor(rnd() * 3), foreign_worker: pick(['yes', 'no']),
  };
  const attributions = FEATURES.map((f) => ({ feature: f, value: input[f], weight: Math.round((rnd() - 0.5) * 1.6 * 1000) / 1000 }));
  if (i % 3 === 0) for (const a of attributions) if (a.feature === 'foreign_worker') a.weight = 0;
  const subject = `application-${String(100000 + i * 7).padStart(6, '0')}`;
  const hostile = i === 1;
  const rationale = `${hostile ? HOSTILE + ' ' : ''}credit-scorer@2.3.0 estimates a ${Math.round(p * 100)}% chance that the applicant repays (approval threshold 60%) and proposes to ${decision} ${amount} EUR over ${term} months. Main factors against: long loan duration (${term} months), no checking account. Main factors for: critical account history, own housing. Protected attributes (personal status and sex, age, foreign worker) carry 18% of the total attribution weight.`;
  items.push({
    entry: {
      item_id: `0192f0c0-0000-7000-8000-${String(i).padStart(12, '0')}`, item_version: 1,
      lease_id: `0192f0c0-1111-7000-8000-${String(i).padStart(12, '0')}`, subject, model: 'credit-scorer@2.3.0', lane,
      amount, proposal_summary: lane === 'human_only' ? null : `${decision} ${amount.toLocaleString('en-GB').replace(/,/g, '\u202f')} / ${term} months`,
      confidence: lane === 'human_only' ? null : Math.max(p, 1 - p), due_at: new Date(now + dueOffset).toISOString(),
      received_at: new Date(now - rnd() * 86400000).toISOString(), lease_expires_at: new Date(now + 8 * 3600000).toISOString(),
      offline: i % 4 === 0, rule: lane === 'human_only' ? 'protected-weight-over-15pct' : amount > 10000 ? 'large-amount-review' : 'low-confidence-review',
      escalation_level: i % 23 === 0 ? 1 : 0,
    },
    item: {
      v: 1, item_id: `0192f0c0-0000-7000-8000-${String(i).padStart(12, '0')}`, item_version: 1, output_id: `out-${i}`,
      source: 'credit-scoring', subject, model: { name: 'credit-scorer', version: '2.3.0' },
      routing: { policy_version: 7, rule: lane === 'human_only' ? 'protected-weight-over-15pct' : amount > 10000 ? 'large-amount-review' : 'low-confidence-review', lane, authority_required: amount, approvals_required: amount > 15000 ? 2 : 1, sla_seconds: 14400, qa_sample_rate: 0.05 },
      received_at: new Date(now - 3600000).toISOString(), due_at: new Date(now + dueOffset).toISOString(),
      input, proposal: lane === 'human_only' ? undefined : { decision, amount, term_months: term },
      confidence: Math.max(p, 1 - p), score: p,
      outcome_schema: [
        { name: 'decision', label: 'Decision', type: 'choice', values: ['approve', 'decline'] },
        { name: 'amount', label: 'Amount (EUR)', type: 'integer', min: 250, max: 20000 },
        { name: 'term_months', label: 'Term (months)', type: 'integer', min: 4, max: 72 },
      ],
      // As the gate serves it: a human-only item carries no model evidence beyond documents.
      evidence: lane === 'human_only' ? { attributions: [], reason_codes: [], documents: [{ title: 'Application summary', text: `Application ${subject}\nRequested: ${amount} EUR over ${term} months\n`, uri: null }], rationale: null } : {
        attributions,
        reason_codes: [
          { code: 'R-duration_in_month', text: `Long loan duration (${term} months) lowers the score` },
          { code: 'R-status_of_existing_checking_account', text: 'Checking account status "no checking account" lowers the score' },
          ...(hostile ? [{ code: 'R-markup', text: HOSTILE }] : []),
        ],
        documents: [{ title: hostile ? `Summary ${HOSTILE}` : 'Application summary', text: `Application ${subject}\nRequested: ${amount} EUR over ${term} months\nModel: credit-scorer@2.3.0, P(good) = ${p.toFixed(3)}\n`, uri: null }],
        rationale,
      },
      protected_features: PROTECTED,
      allowed_reasons: REASONS,
    },
    evidence_sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    current_outcome: lane === 'human_only' ? null : { decision, amount, term_months: term },
    approvals_required: amount > 15000 ? 2 : 1, approvals_given: 0,
    protected_attributions: lane === 'human_only' ? [] : attributions.filter((a) => PROTECTED.includes(a.feature) && a.weight !== 0).map((a) => a.feature),
    decided: null,
  });
}
const byId = new Map(items.map((x) => [x.entry.item_id, x]));
let pending = 0;
let seq = 0;
const decided = new Set<string>();
const account = {
  account_id: 'acc-1', gate_url: 'http://127.0.0.1:8443', user_name: 'anna.schmidt', role: 'reviewer', authority_limit: 25000,
  device_id: 'dev-1', key_id: 'key-anna-1', log_origin: 'countersign.example/log', enrolled_at: new Date(now - 86400000).toISOString(),
};
const online = params.get('offline') !== '1';
let lastSync: string | null = new Date(now - 4 * 60000).toISOString();
const conflicts = [
  { decision_id: 'd-1', device_seq: 3, item_id: 'x', item_version: 1, subject: 'application-004211', kind: 'approve', corrections: [], reason_codes: [], comment: null, decided_at: new Date(now - 7200000).toISOString(), state: 'conflict', reason: 'withdrawn: the supervisor reassigned the item while you were offline', leaf_index: 1201 },
  { decision_id: 'd-2', device_seq: 5, item_id: 'y', item_version: 2, subject: 'application-004980', kind: 'correct', corrections: [], reason_codes: ['R-amount'], comment: null, decided_at: new Date(now - 5400000).toISOString(), state: 'conflict', reason: 'superseded: a newer output (version 3) arrived for this subject', leaf_index: 1207 },
];

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function invoke<T>(cmd: string, args: Any = {}): Promise<T> {
  if (fail && fail.startsWith(cmd + ':')) {
    const code = fail.slice(cmd.length + 1);
    throw { code, message: `mock failure of ${cmd} with ${code}` };
  }
  switch (cmd) {
    case 'status':
      if (!enrolled) throw { code: 'not_enrolled', message: 'no account on this device' };
      return {
        account, online, queue_count: items.length - decided.size, pending_sync: pending, conflicts: conflicts.length,
        last_sync_at: lastSync, last_error: online ? null : 'gate unreachable: connection refused (127.0.0.1:8443)',
        checkpoint: { size: 48213, root_hex: '9f2c1a7be04d55e8c3a1b2f0de4477aa0c1e99b2f3d4c5a6b7e8f9a0b1c2d3e4', verified_at: lastSync },
      } as T;
    case 'enroll':
      await wait(300);
      enrolled = true;
      return account as T;
    case 'accounts':
      return (enrolled ? [account] : []) as T;
    case 'queue':
      return items.filter((x) => !decided.has(x.entry.item_id)).map((x) => x.entry) as T;
    case 'item': {
      const x = byId.get(args.itemId);
      if (!x) throw { code: 'not_found', message: 'no such item' };
      return x as T;
    }
    case 'decide': {
      const id = args.request.item_id;
      await wait(5);
      if (decided.has(id)) throw { code: 'already_decided', message: 'this item version already has a decision' };
      decided.add(id);
      pending += 1;
      seq += 1;
      return { decision_id: `dec-${seq}`, device_seq: seq, item_id: id, kind: args.request.kind, saved_at: new Date().toISOString() } as T;
    }
    case 'sync': {
      const total = pending;
      for (let i = 0; i <= total; i += Math.max(1, Math.ceil(total / 10))) {
        args.onProgress.onmessage({ phase: 'push', done: i, total });
        await wait(150);
      }
      const pushed = pending;
      pending = 0;
      lastSync = new Date().toISOString();
      emitMock('sync-done', { pushed, applied: pushed, conflicts: 0, rejected: 0, refused: 0, pulled: 0, withdrawn: 0, superseded: 0, renewed: 0, checkpoint_size: 48213 });
      return { pushed, applied: pushed, conflicts: 0, rejected: 0, refused: 0, pulled: 0, withdrawn: 0, superseded: 0, renewed: 0, checkpoint_size: 48213 } as T;
    }
    case 'claim':
      return { claimed: 0, offline: args.offlineHours !== null, items: [] } as T;
    case 'conflicts':
      return conflicts as T;
    case 'decisions':
      return [] as T;
    default:
      throw `command ${cmd} not found`;
  }
}
