// @vitest-environment jsdom
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { entry } from './fixtures';

// Model text is data: the item view renders hostile markup in every model-controlled field as text.
vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn(), Channel: class {} }));
vi.mock('@tauri-apps/api/event', () => ({ listen: async () => () => undefined }));

const { default: ItemView } = await import('../src/components/ItemView.svelte');
const { DeskState } = await import('../src/lib/desk.svelte');

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>';

function hostileDetail(lane: 'review' | 'human_only') {
  const e = entry({ lane, subject: `subject ${HOSTILE}` });
  return {
    entry: e,
    item: {
      v: 1,
      item_id: e.item_id,
      item_version: 1,
      output_id: 'o',
      source: `source ${HOSTILE}`,
      subject: e.subject,
      model: { name: `model${HOSTILE}`, version: '1' },
      routing: { policy_version: 3, rule: `rule ${HOSTILE}`, lane, authority_required: 1000, approvals_required: 1, sla_seconds: 3600, qa_sample_rate: 0 },
      received_at: e.received_at,
      due_at: e.due_at,
      input: { [`key ${HOSTILE}`]: `value ${HOSTILE}`, age_in_years: 30 },
      proposal: lane === 'human_only' ? undefined : { decision: `approve ${HOSTILE}`, amount: 1000 },
      confidence: 0.9,
      outcome_schema: [{ name: 'decision', label: `Decision ${HOSTILE}`, type: 'choice', values: ['approve'] }],
      evidence: {
        attributions: [{ feature: 'age_in_years', value: 30, weight: 0.4 }],
        reason_codes: [{ code: `R-${HOSTILE}`, text: `reason ${HOSTILE}` }],
        documents: [{ title: `title ${HOSTILE}`, text: `text ${HOSTILE}`, uri: `javascript:alert(1)` }],
        rationale: `rationale ${HOSTILE}`,
      },
      protected_features: ['age_in_years'],
      allowed_reasons: [{ code: 'R-1', text: `allowed ${HOSTILE}` }],
    },
    evidence_sha256: 'a'.repeat(64),
    current_outcome: null,
    approvals_required: 1,
    approvals_given: 0,
    protected_attributions: ['age_in_years'],
    decided: null,
  };
}

let app: Record<string, unknown> | null = null;
afterEach(() => {
  if (app) unmount(app);
  app = null;
  document.body.innerHTML = '';
});

function render(lane: 'review' | 'human_only') {
  // Chart.js finds no canvas context in jsdom; it says so and draws nothing, which is fine here.
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
  const desk = new DeskState();
  app = mount(ItemView, { target: document.body, props: { desk, detail: hostileDetail(lane) as never } });
  flushSync();
  return document.body;
}

describe('item view with hostile model text', () => {
  it('shows markup as text and creates no element from it', () => {
    const body = render('review');
    expect(body.querySelectorAll('img, script, b, a').length).toBe(0);
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
    const text = body.textContent ?? '';
    for (const where of ['subject', 'rationale', 'reason', 'title', 'text', 'value', 'approve', 'rule', 'source']) {
      expect(text).toContain(`${where} ${HOSTILE}`);
    }
    // Input keys are shown with underscores as spaces, still as text.
    expect(text).toContain(`key ${HOSTILE.replace(/_/g, ' ')}`);
    expect(body.querySelector('[data-testid=rationale]')?.textContent).toBe(`rationale ${HOSTILE}`);
  });

  it('marks protected attributes that carry weight', () => {
    const body = render('review');
    expect(body.querySelector('[data-testid=protected-warning]')?.textContent).toContain('age in years');
    expect(body.querySelector('[data-testid=protected-mark]')?.textContent).toContain('protected, weighted');
  });

  it('shows no proposal and no model evidence for a human-only item', () => {
    const body = render('human_only');
    expect(body.querySelector('[data-testid=proposal-withheld]')).not.toBeNull();
    expect(body.querySelector('[data-testid=item-confidence]')).toBeNull();
    expect(body.querySelector('[data-testid=rationale]')).toBeNull();
    expect(body.querySelector('[data-testid=item-reasons]')).toBeNull();
    expect(body.querySelector('[data-testid=attribution-chart]')).toBeNull();
    expect((body.querySelector('[data-testid=decide-approve]') as HTMLButtonElement).disabled).toBe(true);
  });
});
