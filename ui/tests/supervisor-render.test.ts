// @vitest-environment jsdom
// The trail view shows the desk's verdict on each step, and gate or model text only as text.
import { flushSync, mount, unmount } from 'svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decisionStep, fail, step, trail } from './supervisor-fixtures';

vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn(), Channel: class {} }));
vi.mock('@tauri-apps/api/event', () => ({ listen: async () => () => undefined }));

const { default: TrailPanel } = await import('../src/components/supervisor/TrailPanel.svelte');
const { SupervisorState } = await import('../src/lib/supervisor.svelte');

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>';

let app: Record<string, unknown> | null = null;
afterEach(() => {
  if (app) unmount(app);
  app = null;
  document.body.innerHTML = '';
});

function render(view: ReturnType<typeof trail>) {
  const sv = new SupervisorState();
  sv.trailItem = view.item.item_id;
  sv.trail = view;
  app = mount(TrailPanel, { target: document.body, props: { sv } });
  flushSync();
  return document.body;
}

describe('trail view', () => {
  it('marks each step with its log index, inclusion and signature check', () => {
    const body = render(trail([step(), decisionStep()]));
    expect(body.querySelector('[data-testid=trail-view]')?.getAttribute('data-verified')).toBe('true');
    const steps = [...body.querySelectorAll('[data-testid=trail-step]')];
    expect(steps.map((s) => s.getAttribute('data-index'))).toEqual(['3', '9']);
    expect(steps.every((s) => s.getAttribute('data-verified') === 'true')).toBe(true);
    expect(body.querySelectorAll('[data-testid=inclusion-mark][data-ok=true]')).toHaveLength(2);
    expect(body.querySelector('[data-testid=signature-mark]')?.textContent).toContain('✓ signature verified by this desk');
    expect(body.querySelector('[data-testid=trail-verdict]')?.textContent).toContain('Verified on this desk');
  });

  it('says which check failed', () => {
    const bad = decisionStep({ signature: fail('the JWS does not verify') });
    const body = render(trail([step(), bad], { verified: false, failures: 1 }));
    expect(body.querySelector('[data-testid=trail-verdict]')?.textContent).toContain('1 check failed');
    const failed = body.querySelector('[data-testid=trail-step][data-verified=false]');
    expect(failed?.getAttribute('data-index')).toBe('9');
    expect(failed?.textContent).toContain('signature: the JWS does not verify');
    expect(body.querySelector('[data-testid=signature-mark]')?.getAttribute('data-ok')).toBe('false');
  });

  it('renders markup from the gate and the model as text', () => {
    const view = trail([
      step({ summary: `output ${HOSTILE}`, actor: `src ${HOSTILE}`, entry: JSON.stringify({ rationale: HOSTILE }) }),
      decisionStep({ reviewer: `rev ${HOSTILE}`, payload: JSON.stringify({ comment: HOSTILE }) }),
    ]);
    view.item.subject = `subject ${HOSTILE}`;
    view.missing = [`missing ${HOSTILE}`];
    const body = render(view);
    expect(body.querySelectorAll('img, script, b').length).toBe(0);
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
    const text = body.textContent ?? '';
    for (const where of ['output', 'subject', 'rev', 'missing']) expect(text).toContain(`${where} ${HOSTILE}`);
    expect(text).toContain(JSON.stringify(HOSTILE).slice(1, -1));
  });
});
