// Timings for BENCHMARKS.md, read from the real window by the end-to-end tests
// (`window.countersignPerf`): keystroke to the next item painted, and page start to an interactive
// queue. Recording costs two timestamps per keystroke.

export interface PerfRecord {
  /** ms from a navigation or decision key event to the frame after the new item was drawn. */
  keyToPaint: number[];
  /** ms from the same key event to the new item's DOM being updated (before layout and paint). */
  keyToDom: number[];
  /** ms from the page's time origin to the first queue rows on screen, once. */
  queueInteractiveAt: number | null;
  /** ms the shell took to sign and save each decision (the `decide` command, seen from the page). */
  save: number[];
}

const LIMIT = 2000;

export const perf: PerfRecord = { keyToPaint: [], keyToDom: [], queueInteractiveAt: null, save: [] };

let pendingKeyAt: number | null = null;

/** A key that should bring another item was pressed at `eventTime` (Event.timeStamp). */
export function markKey(eventTime: number): void {
  pendingKeyAt = eventTime;
}

/** Runs `then` after the browser has painted the current DOM: the next frame, then a task. */
export function afterPaint(then: () => void): void {
  requestAnimationFrame(() => setTimeout(then, 0));
}

/** Resolves once the page has painted what is in the DOM now; at once where nothing paints. */
export function painted(): Promise<void> {
  return new Promise((resolve) =>
    typeof requestAnimationFrame === 'function' ? afterPaint(resolve) : resolve(),
  );
}

/** The shown item changed and its DOM is updated; closes the pending key measurement. */
export function itemShown(now: () => number = () => performance.now(), wait = afterPaint): void {
  if (pendingKeyAt === null) return;
  const start = pendingKeyAt;
  pendingKeyAt = null;
  perf.keyToDom.push(now() - start);
  if (perf.keyToDom.length > LIMIT) perf.keyToDom.shift();
  wait(() => {
    perf.keyToPaint.push(now() - start);
    if (perf.keyToPaint.length > LIMIT) perf.keyToPaint.shift();
  });
}

export function markSave(ms: number): void {
  perf.save.push(ms);
  if (perf.save.length > LIMIT) perf.save.shift();
}

export function queueShown(now: () => number = () => performance.now()): void {
  if (perf.queueInteractiveAt === null) perf.queueInteractiveAt = now();
}

/** p-th percentile (0..100) of a sample, nearest rank; null when empty. */
export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

if (typeof window !== 'undefined') {
  (window as unknown as { countersignPerf: PerfRecord }).countersignPerf = perf;
}
