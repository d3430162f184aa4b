/** What a key press asks the app to do. */
export type Action =
  | 'approve'
  | 'correct'
  | 'escalate'
  | 'next'
  | 'previous'
  | 'help'
  | 'close'
  | 'search'
  | 'sync'
  | 'claim'
  | 'conflicts';

/** One line of the `?` help: keys as shown, and what they do. */
export interface Binding {
  keys: string[];
  action: Action;
  words: string;
}

export const BINDINGS: readonly Binding[] = [
  { keys: ['A'], action: 'approve', words: 'Approve the proposal as it is' },
  { keys: ['C'], action: 'correct', words: 'Correct: edit the outcome, give a reason' },
  { keys: ['E'], action: 'escalate', words: 'Escalate to a higher authority, with a reason' },
  { keys: ['J', '↓'], action: 'next', words: 'Next item' },
  { keys: ['K', '↑'], action: 'previous', words: 'Previous item' },
  { keys: ['/'], action: 'search', words: 'Filter the queue by subject' },
  { keys: ['S'], action: 'sync', words: 'Sync with the gate now' },
  { keys: ['O'], action: 'claim', words: 'Claim items (for offline work)' },
  { keys: ['I'], action: 'conflicts', words: 'Open the conflicts inbox' },
  { keys: ['?'], action: 'help', words: 'Show these keys' },
  { keys: ['Esc'], action: 'close', words: 'Close a dialog or leave a field' },
];

const BY_KEY: Record<string, Action> = {
  a: 'approve',
  c: 'correct',
  e: 'escalate',
  j: 'next',
  arrowdown: 'next',
  k: 'previous',
  arrowup: 'previous',
  '/': 'search',
  s: 'sync',
  o: 'claim',
  i: 'conflicts',
  '?': 'help',
  escape: 'close',
};

export interface KeyInput {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
  repeat?: boolean;
}

export interface KeyContext {
  /** Focus is in a text field, select or textarea: letters are typing, not commands. */
  typing: boolean;
  /** A dialog is open: only Esc acts globally, the dialog handles the rest. */
  dialogOpen: boolean;
  /** Focus is on a drop-down (e.g. the lane filter): arrows belong to it, letters stay commands. */
  inSelect?: boolean;
}

/**
 * Maps a key press to an action, or null when the key is not ours. Modifier chords are left to the
 * system (copy, paste, reload); a held-down key's auto-repeat never decides anything, while it may
 * still move through the list.
 */
export function actionFor(input: KeyInput, ctx: KeyContext): Action | null {
  if (input.ctrlKey || input.metaKey || input.altKey) return null;
  const key = input.key.length === 1 ? input.key.toLowerCase() : input.key.toLowerCase();
  const action = BY_KEY[key];
  if (action === undefined) return null;
  if (action === 'close') return 'close';
  if (ctx.typing || ctx.dialogOpen) return null;
  if (ctx.inSelect && (key === 'arrowdown' || key === 'arrowup')) return null;
  if (input.repeat && action !== 'next' && action !== 'previous') return null;
  return action;
}

/** Whether focus is on a drop-down. */
export function isSelectTarget(target: EventTarget | null): boolean {
  const el = target as { tagName?: unknown } | null;
  return typeof el?.tagName === 'string' && el.tagName.toUpperCase() === 'SELECT';
}

/** Whether focus is on something that takes typed text. */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (target === null || typeof target !== 'object') return false;
  const el = target as { tagName?: unknown; isContentEditable?: unknown; type?: unknown };
  if (el.isContentEditable === true) return true;
  const tag = typeof el.tagName === 'string' ? el.tagName.toUpperCase() : '';
  // A drop-down is not typing: after picking a filter, J/K/A must still work (see inSelect).
  if (tag === 'TEXTAREA') return true;
  if (tag === 'INPUT') {
    const type = typeof el.type === 'string' ? el.type.toLowerCase() : 'text';
    return !['checkbox', 'radio', 'button', 'submit', 'reset', 'range'].includes(type);
  }
  return false;
}
