import { describe, expect, it } from 'vitest';
import { ago, formatDuration, slaCountdown, SOON_MS } from '../src/lib/time';

const now = Date.parse('2026-11-24T12:00:00Z');
const s = 1000;
const m = 60 * s;
const h = 60 * m;

describe('SLA countdown', () => {
  it('formats durations with the two largest units', () => {
    expect(formatDuration(45 * s)).toBe('45s');
    expect(formatDuration(12 * m + 30 * s)).toBe('12m');
    expect(formatDuration(4 * h + 5 * m)).toBe('4h 05m');
    expect(formatDuration(2 * 24 * h + 3 * h + 59 * m)).toBe('2d 3h');
    expect(formatDuration(0)).toBe('0s');
  });

  it('counts down to the due time and marks the last half hour', () => {
    expect(slaCountdown(now + 4 * h + 5 * m, now)).toEqual({ text: '4h 05m left', state: 'ok' });
    expect(slaCountdown(now + SOON_MS, now)).toEqual({ text: '30m left', state: 'soon' });
    expect(slaCountdown(now + SOON_MS + s, now).state).toBe('ok');
    expect(slaCountdown(now + 59 * s, now)).toEqual({ text: '59s left', state: 'soon' });
  });

  it('says how long an item is overdue, from the due second on', () => {
    expect(slaCountdown(now, now)).toEqual({ text: '0s overdue', state: 'overdue' });
    expect(slaCountdown(now - 12 * m, now)).toEqual({ text: '12m overdue', state: 'overdue' });
    expect(slaCountdown(now - 26 * h, now)).toEqual({ text: '1d 2h overdue', state: 'overdue' });
  });

  it('shows a dash for an unparsable due time instead of NaN', () => {
    expect(slaCountdown(Number.NaN, now)).toEqual({ text: '—', state: 'ok' });
  });

  it('says when the last sync was', () => {
    expect(ago(null, now)).toBe('never');
    expect(ago('2026-11-24T11:59:55Z', now)).toBe('just now');
    expect(ago('2026-11-24T11:59:30Z', now)).toBe('30 s ago');
    expect(ago('2026-11-24T11:57:00Z', now)).toBe('3 min ago');
    expect(ago('2026-11-24T09:00:00Z', now)).toBe('3 h ago');
    expect(ago('2026-11-20T09:00:00Z', now)).toBe('2026-11-20 09:00 UTC');
    expect(ago('garbage', now)).toBe('unknown');
  });
});
