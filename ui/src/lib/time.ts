/** How urgent an SLA is, for colour: overdue, due within the warning window, or comfortable. */
export type SlaState = 'overdue' | 'soon' | 'ok';

/** Items due within this window are marked as "soon". */
export const SOON_MS = 30 * 60 * 1000;

/** A duration in the two largest units that matter ("2d 3h", "4h 05m", "12m", "45s"). */
export function formatDuration(ms: number): string {
  const total = Math.floor(Math.abs(ms) / 1000);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${String(minutes).padStart(2, '0')}m`;
  if (minutes > 0) return `${minutes}m`;
  return `${seconds}s`;
}

export interface Countdown {
  text: string;
  state: SlaState;
}

/** The SLA countdown shown on a queue row: "4h 05m left" or "12m overdue". */
export function slaCountdown(dueMs: number, nowMs: number): Countdown {
  const left = dueMs - nowMs;
  if (!Number.isFinite(left)) return { text: '—', state: 'ok' };
  if (left <= 0) return { text: `${formatDuration(left)} overdue`, state: 'overdue' };
  return { text: `${formatDuration(left)} left`, state: left <= SOON_MS ? 'soon' : 'ok' };
}

/** "just now", "3 min ago", "2 h ago", or a date for anything older than a day. */
export function ago(iso: string | null | undefined, nowMs: number): string {
  if (!iso) return 'never';
  const at = Date.parse(iso);
  if (!Number.isFinite(at)) return 'unknown';
  const s = Math.max(0, Math.floor((nowMs - at) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(at).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** A timestamp for people, in the local time zone, to the minute. */
export function localTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
