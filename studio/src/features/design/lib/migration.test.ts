import { describe, expect, it } from 'vitest';
import { mapRows, stateMap } from './migration';
import type { PackageJson } from './model';

describe('migration state map', () => {
  const target: PackageJson = {
    tenant: {},
    types: [{ name: 'order', workflow: { states: { NEW: { kind: 'initial' }, DONE: {} } } }],
  };
  it('has a row per type and state that cannot move, with the target states', () => {
    const rows = mapRows(
      [
        { type: 'order', outcome: 'cannot_move', from_state: 'HELD' },
        { type: 'order', outcome: 'moved', from_state: 'NEW' },
        { type: 'order', outcome: 'cannot_move', from_state: 'HELD' },
        { type: 'ticket', outcome: 'cannot_move', from_state: 'X' },
      ],
      target,
    );
    expect(rows).toEqual([
      { key: 'order.HELD', type: 'order', state: 'HELD', count: 2, targets: ['NEW', 'DONE'] },
      { key: 'ticket.X', type: 'ticket', state: 'X', count: 1, targets: [] },
    ]);
  });
  it('sends only the chosen rows', () => {
    expect(stateMap({ 'order.HELD': 'NEW', 'ticket.X': '' })).toEqual({ 'order.HELD': 'NEW' });
  });
});
