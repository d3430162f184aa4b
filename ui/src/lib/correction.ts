import { formatAmount } from './format';
import type { CorrectionInput } from './generated/CorrectionInput';
import type { FieldSpec } from './generated/FieldSpec';

/**
 * The longest comment the editors take. Well inside what the gate accepts for a whole signed
 * decision (64 KiB, which the desk checks when it signs), so a comment alone never gets there.
 */
export const COMMENT_MAX_CHARS = 4000;

/** An outcome as JSON: the proposal, the outcome in force, or nothing (human-only). */
type Outcome = { readonly [key: string]: unknown } | null | undefined;

/** The text shown in a field's input for a JSON value. */
export function inputText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** The editor's starting text for every field: the outcome currently in force. */
export function initialDraft(schema: readonly FieldSpec[], baseline: Outcome): Record<string, string> {
  const draft: Record<string, string> = {};
  for (const spec of schema) draft[spec.name] = inputText(baseline?.[spec.name]);
  return draft;
}

export type Parsed = { ok: true; value: string | number } | { ok: false; error: string };

// Integers are checked as decimal text so "12e3", "0x10" or "1.0" are not silently accepted.
const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Parses one field's text by its type and checks its bounds; an empty field is "no value". */
export function parseField(spec: FieldSpec, text: string): Parsed {
  const raw = spec.type === 'text' ? text : text.trim();
  switch (spec.type) {
    case 'choice': {
      if (raw === '') return { ok: false, error: 'Choose a value.' };
      if (!spec.values.includes(raw)) {
        return { ok: false, error: `Choose one of: ${spec.values.join(', ')}.` };
      }
      return { ok: true, value: raw };
    }
    case 'integer': {
      const compact = raw.replace(/[\s_\u00a0\u202f]/g, '');
      if (compact === '') return { ok: false, error: 'Enter a whole number.' };
      if (!INTEGER.test(compact)) return { ok: false, error: 'Enter a whole number.' };
      const n = Number(compact);
      if (!Number.isSafeInteger(n)) return { ok: false, error: 'The number is too large.' };
      const min = spec.min === null || spec.min === undefined ? null : Number(spec.min);
      const max = spec.max === null || spec.max === undefined ? null : Number(spec.max);
      if (min !== null && n < min) return { ok: false, error: `At least ${formatAmount(min)}.` };
      if (max !== null && n > max) return { ok: false, error: `At most ${formatAmount(max)}.` };
      return { ok: true, value: n };
    }
    case 'number': {
      const compact = raw.replace(/[\s_\u00a0\u202f]/g, '');
      if (compact === '' || !DECIMAL.test(compact)) return { ok: false, error: 'Enter a number.' };
      const n = Number(compact);
      if (!Number.isFinite(n)) return { ok: false, error: 'Enter a number.' };
      if (spec.min !== null && spec.min !== undefined && n < spec.min) {
        return { ok: false, error: `At least ${spec.min}.` };
      }
      if (spec.max !== null && spec.max !== undefined && n > spec.max) {
        return { ok: false, error: `At most ${spec.max}.` };
      }
      return { ok: true, value: n };
    }
    case 'text': {
      const limit = spec.max_len === null || spec.max_len === undefined ? null : Number(spec.max_len);
      const length = [...raw].length;
      if (limit !== null && length > limit) {
        return { ok: false, error: `At most ${limit} characters (now ${length}).` };
      }
      return { ok: true, value: raw };
    }
  }
}

export interface CorrectionCheck {
  /** Per field: the error to show, absent when the field is fine. */
  errors: Record<string, string>;
  /** The fields whose value differs from the baseline, ready for a DecideRequest. */
  corrections: CorrectionInput[];
  /** An error about the whole correction (nothing changed, no reason). */
  formError: string | null;
  ok: boolean;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === undefined || a === null) return b === undefined || b === null;
  if (typeof a === 'object' || typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return a === b;
}

/**
 * Checks a correction the way the desk and the gate will: every changed field must fit its type,
 * something must change, and a reason from the allowed list must be given. When no outcome was
 * shown (a human-only item nobody decided yet) the reviewer gives the whole outcome, so every field
 * is required; otherwise unchanged fields are simply not edits.
 */
export function checkCorrection(
  schema: readonly FieldSpec[],
  baseline: Outcome,
  draft: Readonly<Record<string, string>>,
  reason: string,
  allowedReasons: readonly string[],
): CorrectionCheck {
  const errors: Record<string, string> = {};
  const corrections: CorrectionInput[] = [];
  const wholeOutcome = baseline === null || baseline === undefined;
  for (const spec of schema) {
    const text = draft[spec.name] ?? '';
    const before = baseline?.[spec.name];
    if (wholeOutcome && text.trim() === '') {
      errors[spec.name] = 'Required.';
      continue;
    }
    if (text === inputText(before)) continue;
    const parsed = parseField(spec, text);
    if (!parsed.ok) {
      errors[spec.name] = parsed.error;
      continue;
    }
    if (!sameValue(before, parsed.value)) corrections.push({ field: spec.name, to: parsed.value });
  }
  let formError: string | null = null;
  const fieldsOk = Object.keys(errors).length === 0;
  if (fieldsOk && corrections.length === 0) formError = 'Change at least one field.';
  else if (reason === '') formError = 'Choose a reason.';
  else if (!allowedReasons.includes(reason)) formError = 'Choose a reason from the list.';
  return { errors, corrections, formError, ok: fieldsOk && formError === null };
}
