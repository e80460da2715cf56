import { describe, expect, it } from 'vitest';
import { mapRows, namesOf, stateMap } from './migration';
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
  it('names types and states by their labels, by their names where there is none', () => {
    const names = namesOf({
      tenant: {},
      types: [{ name: 'order', label: 'Order', workflow: { states: { ON_HOLD: { label: 'On hold' }, NEW: {} } } }],
    });
    expect(names.type('order')).toBe('Order');
    expect(names.state('order', 'ON_HOLD')).toBe('On hold');
    expect(names.state('order', 'NEW')).toBe('NEW');
    expect(names.state('order', 'GONE')).toBe('GONE');
    expect(names.type('ticket')).toBe('ticket');
    expect(namesOf(null).state('order', 'ON_HOLD')).toBe('ON_HOLD');
  });
  it('sends only the chosen rows', () => {
    expect(stateMap({ 'order.HELD': 'NEW', 'ticket.X': '' })).toEqual({ 'order.HELD': 'NEW' });
  });
});
