import { describe, expect, it } from 'vitest';
import { actionFor, BINDINGS, isSelectTarget, isTypingTarget } from '../src/lib/keys';

const free = { typing: false, dialogOpen: false };

describe('keyboard map', () => {
  it('maps the decision and navigation keys, in either case', () => {
    expect(actionFor({ key: 'a' }, free)).toBe('approve');
    expect(actionFor({ key: 'A' }, free)).toBe('approve');
    expect(actionFor({ key: 'c' }, free)).toBe('correct');
    expect(actionFor({ key: 'E' }, free)).toBe('escalate');
    expect(actionFor({ key: 'j' }, free)).toBe('next');
    expect(actionFor({ key: 'J' }, free)).toBe('next');
    expect(actionFor({ key: 'ArrowDown' }, free)).toBe('next');
    expect(actionFor({ key: 'k' }, free)).toBe('previous');
    expect(actionFor({ key: 'ArrowUp' }, free)).toBe('previous');
    expect(actionFor({ key: '?' }, free)).toBe('help');
    expect(actionFor({ key: 'Escape' }, free)).toBe('close');
    expect(actionFor({ key: '/' }, free)).toBe('search');
  });

  it('ignores keys that are not ours and modifier chords', () => {
    expect(actionFor({ key: 'x' }, free)).toBeNull();
    expect(actionFor({ key: 'a', ctrlKey: true }, free)).toBeNull();
    expect(actionFor({ key: 'c', metaKey: true }, free)).toBeNull();
    expect(actionFor({ key: 'j', altKey: true }, free)).toBeNull();
  });

  it('lets letters be typed in fields and dialogs, but Esc always closes', () => {
    expect(actionFor({ key: 'a' }, { typing: true, dialogOpen: false })).toBeNull();
    expect(actionFor({ key: 'j' }, { typing: false, dialogOpen: true })).toBeNull();
    expect(actionFor({ key: 'Escape' }, { typing: true, dialogOpen: true })).toBe('close');
  });

  it('leaves arrows to a focused drop-down but keeps letters as commands', () => {
    const select = { typing: false, dialogOpen: false, inSelect: true };
    expect(actionFor({ key: 'ArrowDown' }, select)).toBeNull();
    expect(actionFor({ key: 'ArrowUp' }, select)).toBeNull();
    expect(actionFor({ key: 'j' }, select)).toBe('next');
    expect(actionFor({ key: 'a' }, select)).toBe('approve');
  });

  it('never decides on an auto-repeated key, but lets it scroll', () => {
    expect(actionFor({ key: 'a', repeat: true }, free)).toBeNull();
    expect(actionFor({ key: 'e', repeat: true }, free)).toBeNull();
    expect(actionFor({ key: 'j', repeat: true }, free)).toBe('next');
  });

  it('documents every action it maps in the help', () => {
    const documented = new Set(BINDINGS.map((b) => b.action));
    for (const key of ['a', 'c', 'e', 'j', 'k', '?', 'Escape', '/', 's', 'o', 'i']) {
      const action = actionFor({ key }, free);
      expect(action).not.toBeNull();
      expect(documented.has(action!)).toBe(true);
    }
  });

  it('knows which targets take typed text', () => {
    expect(isTypingTarget({ tagName: 'INPUT', type: 'text' } as unknown as EventTarget)).toBe(true);
    expect(isTypingTarget({ tagName: 'INPUT', type: 'search' } as unknown as EventTarget)).toBe(true);
    expect(isTypingTarget({ tagName: 'INPUT', type: 'checkbox' } as unknown as EventTarget)).toBe(false);
    expect(isTypingTarget({ tagName: 'TEXTAREA' } as unknown as EventTarget)).toBe(true);
    expect(isTypingTarget({ tagName: 'SELECT' } as unknown as EventTarget)).toBe(false);
    expect(isSelectTarget({ tagName: 'SELECT' } as unknown as EventTarget)).toBe(true);
    expect(isSelectTarget({ tagName: 'INPUT' } as unknown as EventTarget)).toBe(false);
    expect(isTypingTarget({ tagName: 'DIV', isContentEditable: true } as unknown as EventTarget)).toBe(true);
    expect(isTypingTarget({ tagName: 'BUTTON' } as unknown as EventTarget)).toBe(false);
    expect(isTypingTarget(null)).toBe(false);
  });
});
