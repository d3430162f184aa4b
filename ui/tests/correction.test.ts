import { describe, expect, it } from 'vitest';
import { checkCorrection, initialDraft, parseField } from '../src/lib/correction';
import type { FieldSpec } from '../src/lib/generated/FieldSpec';
import { SCHEMA } from './fixtures';

const spec = (name: string) => SCHEMA.find((f) => f.name === name) as FieldSpec;
const proposal = { decision: 'approve', amount: 12000, term_months: 36, rate: 0.05, note: 'ok' };
const reasons = ['R-amount', 'R-term'];

describe('field parsing by outcome_schema type', () => {
  it('accepts only the listed choices', () => {
    expect(parseField(spec('decision'), 'decline')).toEqual({ ok: true, value: 'decline' });
    expect(parseField(spec('decision'), 'maybe').ok).toBe(false);
    expect(parseField(spec('decision'), '').ok).toBe(false);
  });

  it('accepts whole numbers within bounds, with grouping spaces', () => {
    expect(parseField(spec('amount'), '9000')).toEqual({ ok: true, value: 9000 });
    expect(parseField(spec('amount'), '12 500')).toEqual({ ok: true, value: 12500 });
    expect(parseField(spec('amount'), '250')).toEqual({ ok: true, value: 250 });
    expect(parseField(spec('amount'), '20000')).toEqual({ ok: true, value: 20000 });
    expect(parseField(spec('amount'), '249')).toEqual({ ok: false, error: 'At least 250.' });
    // Bounds are written the way amounts are shown, grouped with a thin space.
    expect(parseField(spec('amount'), '20001')).toEqual({ ok: false, error: 'At most 20\u202f000.' });
  });

  it('refuses integers written as decimals, exponents, hex or text', () => {
    for (const bad of ['12.5', '1.0', '12e3', '0x10', 'ten', '', '99999999999999999999']) {
      expect(parseField(spec('amount'), bad).ok, bad).toBe(false);
    }
  });

  it('accepts decimals within bounds', () => {
    expect(parseField(spec('rate'), '0.07')).toEqual({ ok: true, value: 0.07 });
    expect(parseField(spec('rate'), '.1')).toEqual({ ok: true, value: 0.1 });
    expect(parseField(spec('rate'), '0.3')).toEqual({ ok: false, error: 'At most 0.25.' });
    expect(parseField(spec('rate'), '-0.1')).toEqual({ ok: false, error: 'At least 0.' });
    expect(parseField(spec('rate'), 'NaN').ok).toBe(false);
    expect(parseField(spec('rate'), 'Infinity').ok).toBe(false);
  });

  it('treats absent bounds (omitted by the wire) as no bound', () => {
    const open = { name: 'n', label: 'N', type: 'integer' } as unknown as FieldSpec;
    expect(parseField(open, '-5')).toEqual({ ok: true, value: -5 });
    expect(parseField(open, '123456789')).toEqual({ ok: true, value: 123456789 });
    const text = { name: 't', label: 'T', type: 'text' } as unknown as FieldSpec;
    expect(parseField(text, 'x'.repeat(1000)).ok).toBe(true);
  });

  it('limits text by characters, not bytes', () => {
    expect(parseField(spec('note'), 'äöüßé')).toEqual({ ok: true, value: 'äöüßé' });
    expect(parseField(spec('note'), 'abcdef').ok).toBe(false);
  });
});

describe('checking a correction', () => {
  const draft = initialDraft(SCHEMA, proposal);

  it('starts from the shown outcome', () => {
    expect(draft).toEqual({ decision: 'approve', amount: '12000', term_months: '36', rate: '0.05', note: 'ok' });
    expect(initialDraft(SCHEMA, null)).toEqual({ decision: '', amount: '', term_months: '', rate: '', note: '' });
  });

  it('sends only the changed fields, typed', () => {
    const c = checkCorrection(SCHEMA, proposal, { ...draft, decision: 'decline', amount: '9 000' }, 'R-amount', reasons);
    expect(c.ok).toBe(true);
    expect(c.corrections).toEqual([
      { field: 'decision', to: 'decline' },
      { field: 'amount', to: 9000 },
    ]);
  });

  it('requires a change', () => {
    const c = checkCorrection(SCHEMA, proposal, draft, 'R-amount', reasons);
    expect(c.ok).toBe(false);
    expect(c.formError).toBe('Change at least one field.');
    // Re-typing the same value differently is not a change either.
    expect(checkCorrection(SCHEMA, proposal, { ...draft, amount: '12 000' }, 'R-amount', reasons).formError).toBe('Change at least one field.');
  });

  it('requires a reason from the allowed list', () => {
    const changed = { ...draft, term_months: '48' };
    expect(checkCorrection(SCHEMA, proposal, changed, '', reasons).formError).toBe('Choose a reason.');
    expect(checkCorrection(SCHEMA, proposal, changed, 'R-made-up', reasons).formError).toBe('Choose a reason from the list.');
    expect(checkCorrection(SCHEMA, proposal, changed, 'R-term', reasons).ok).toBe(true);
  });

  it('reports each invalid field and refuses the whole correction', () => {
    const c = checkCorrection(SCHEMA, proposal, { ...draft, amount: '25000', term_months: 'x' }, 'R-amount', reasons);
    expect(c.ok).toBe(false);
    expect(Object.keys(c.errors).sort()).toEqual(['amount', 'term_months']);
  });

  it('makes a human-only decision give the whole outcome, as the gate requires', () => {
    const empty = initialDraft(SCHEMA, null);
    const partial = checkCorrection(SCHEMA, null, { ...empty, decision: 'decline' }, 'R-amount', reasons);
    expect(partial.ok).toBe(false);
    expect(Object.keys(partial.errors).sort()).toEqual(['amount', 'note', 'rate', 'term_months']);
    const whole = { decision: 'decline', amount: '5000', term_months: '24', rate: '0.1', note: 'no' };
    const c = checkCorrection(SCHEMA, null, whole, 'R-amount', reasons);
    expect(c.ok).toBe(true);
    expect(c.corrections).toEqual([
      { field: 'decision', to: 'decline' },
      { field: 'amount', to: 5000 },
      { field: 'term_months', to: 24 },
      { field: 'rate', to: 0.1 },
      { field: 'note', to: 'no' },
    ]);
  });
});
