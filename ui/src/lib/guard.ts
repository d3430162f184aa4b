/**
 * Lets one decision per item run at a time, and none after it has been saved: a second key press
 * while the first is in flight, or after it landed, does nothing. The desk refuses a second
 * decision on the same item version anyway (already_decided); this keeps the UI from even asking.
 */
export class DecisionGuard {
  private readonly inFlight = new Set<string>();
  private readonly done = new Set<string>();

  isBusy(itemId: string): boolean {
    return this.inFlight.has(itemId);
  }

  isDone(itemId: string): boolean {
    return this.done.has(itemId);
  }

  /**
   * Runs `work` for `itemId` unless a decision for it is running or has succeeded. Returns
   * `{ran: false}` when it refused to run, otherwise the work's result. A failed run frees the item
   * again so the reviewer can retry.
   */
  async run<T>(itemId: string, work: () => Promise<T>): Promise<{ ran: false } | { ran: true; value: T }> {
    if (this.inFlight.has(itemId) || this.done.has(itemId)) return { ran: false };
    this.inFlight.add(itemId);
    try {
      const value = await work();
      this.done.add(itemId);
      return { ran: true, value };
    } finally {
      this.inFlight.delete(itemId);
    }
  }

  /** Forget an item (e.g. a newer version arrived with the same id and may be decided again). */
  forget(itemId: string): void {
    this.done.delete(itemId);
  }
}

/**
 * Decision keys wait this long after a new item is painted. A double tap on A would otherwise
 * approve the item that replaced the first one before the reviewer has seen it.
 */
export const DWELL_MS = 200;

/** Whether an item shown at `shownAt` has been on screen long enough to take a decision key. */
export function dwellOver(shownAt: number, now: number, dwellMs = DWELL_MS): boolean {
  return now - shownAt >= dwellMs;
}
