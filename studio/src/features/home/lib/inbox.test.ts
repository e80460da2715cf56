import { describe, expect, it } from 'vitest';
import { countsByType, sections, type InboxItem } from './inbox';

const item = (id: string, type: string, names: string[]): InboxItem => ({
  entity: { id, type, state: 'S', data: {}, created_at: '2026-01-01T00:00:00Z' },
  transitions: names.map((name) => ({ name, label: null, to: 'T' })),
});

describe('the inbox', () => {
  const items = [item('a', 'order', ['approveOrder', 'rejectOrder']), item('b', 'trip', ['startTrip']), item('c', 'order', ['approveOrder'])];
  const groups = [
    { type: 'order', transition: 'approveOrder', label: 'Approve', count: 2 },
    { type: 'order', transition: 'rejectOrder', label: null, count: 1 },
    { type: 'trip', transition: 'startTrip', count: 1 },
  ];

  it('groups the entities by type and transition, in the groups order, oldest first', () => {
    const s = sections(items, groups);
    expect(s.map((x) => [x.type, x.title, x.entities.map((e) => e.id)])).toEqual([
      ['order', 'Approve', ['a', 'c']],
      ['order', 'Reject order', ['a']],
      ['trip', 'Start trip', ['b']],
    ]);
    expect(sections([], [])).toEqual([]);
  });

  it('counts each entity once per type, with a plus when there are more pages', () => {
    expect([...countsByType(items, false)]).toEqual([
      ['order', '2'],
      ['trip', '1'],
    ]);
    expect(countsByType(items, true).get('order')).toBe('2+');
    expect(countsByType([], false).size).toBe(0);
  });
});
