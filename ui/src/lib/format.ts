const amountFormat = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 2 });

/** "12 000" style grouping with a thin space, the same whatever the OS locale. */
export function formatAmount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return amountFormat.format(n).replace(/,/g, '\u202f');
}

export function formatPercent(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return '—';
  return `${Math.round(p * 100)}%`;
}

/** Any JSON value as one line of plain text. */
export function valueText(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? formatAmount(v) : String(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return JSON.stringify(v) ?? String(v);
}

/** "credit_amount" → "credit amount": attribute names made readable, the raw name kept elsewhere. */
export function humanize(name: string): string {
  return name.replace(/_/g, ' ');
}

export function shortHex(hex: string, n = 12): string {
  return hex.length > n ? `${hex.slice(0, n)}…` : hex;
}
