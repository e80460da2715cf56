import { describe, expect, it } from 'vitest';
import { record, redo, start, undo } from './history';

describe('history', () => {
  it('undoes and redoes, and a new edit drops the future', () => {
    let h = start(1);
    h = record(h, 2);
    h = record(h, 3);
    h = undo(h);
    expect(h.present).toBe(2);
    h = undo(h);
    expect(h.present).toBe(1);
    expect(undo(h)).toBe(h);
    h = redo(h);
    expect(h.present).toBe(2);
    h = record(h, 9);
    expect(h.future).toEqual([]);
    expect(redo(h)).toBe(h);
    expect(h.past).toEqual([1, 2]);
  });

  it('merges edits with the same key into one step', () => {
    let h = start('');
    h = record(h, 'a', 'label');
    h = record(h, 'ab', 'label');
    h = record(h, 'abc', 'label');
    h = record(h, 'x', 'other');
    expect(h.past).toEqual(['', 'abc']);
    h = undo(undo(h));
    expect(h.present).toBe('');
  });
});
