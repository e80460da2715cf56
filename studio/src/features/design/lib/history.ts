// Undo and redo of the draft's edits while the page is open: a past, a present and a future.
// Edits that follow each other quickly on the same thing (typing a label, dragging a state) can
// be merged into one step by giving them the same `coalesce` key.

export interface History<T> {
  past: T[];
  present: T;
  future: T[];
  /** The key of the last edit, for merging the next one into it. */
  lastKey: string | null;
}

const LIMIT = 200;

export function start<T>(present: T): History<T> {
  return { past: [], present, future: [], lastKey: null };
}

/** Records `next` as an edit; an edit with the key of the previous one replaces it in place. */
export function record<T>(h: History<T>, next: T, coalesce: string | null = null): History<T> {
  if (next === h.present) return h;
  if (coalesce !== null && coalesce === h.lastKey) return { ...h, present: next, future: [] };
  const past = [...h.past, h.present].slice(-LIMIT);
  return { past, present: next, future: [], lastKey: coalesce };
}

export function undo<T>(h: History<T>): History<T> {
  const previous = h.past[h.past.length - 1];
  if (previous === undefined) return h;
  return { past: h.past.slice(0, -1), present: previous, future: [h.present, ...h.future], lastKey: null };
}

export function redo<T>(h: History<T>): History<T> {
  const [next, ...future] = h.future;
  if (next === undefined) return h;
  return { past: [...h.past, h.present], present: next, future, lastKey: null };
}

/** Replaces the whole history (a reload of the draft from the server). */
export function reset<T>(present: T): History<T> {
  return start(present);
}
