import { describe, expect, it } from 'vitest';
import { diffEntity, readDryRun } from './dryRun';

describe('dry run', () => {
  it('diffs the state and the fields that changed', () => {
    expect(
      diffEntity(
        { state: 'A', data: { n: 1, same: 'x', gone: true } },
        { state: 'B', data: { n: 2, same: 'x', added: [1] } },
      ),
    ).toEqual([
      { field: 'state', before: '"A"', after: '"B"' },
      { field: 'n', before: '1', after: '2' },
      { field: 'added', before: '—', after: '[1]' },
      { field: 'gone', before: 'true', after: '—' },
    ]);
  });

  it('shows what a guard read as path = value', () => {
    const view = readDryRun({
      outcome: 'rejected',
      guards: [{ message: 'm', passed: false, values: { 'customer.tier': 'gold', 'entity.lines': [1, 2] } }, { message: 'n', passed: true, values: 3 }],
    });
    expect(view.guards.map((g) => g.values)).toEqual(['customer.tier = "gold", entity.lines = [1,2]', '3']);
  });

  it('reads a rejection with its guards', () => {
    const view = readDryRun({
      outcome: 'rejected',
      rejection: { code: 'GUARD_FAILED', message: 'Only orders above 1000 go on hold' },
      guards: [{ message: 'Only orders above 1000 go on hold', passed: false, values: { 'entity.total_amount': 120 } }],
      changes: [],
      events: [],
    });
    expect(view).toEqual({
      applied: false,
      message: 'Only orders above 1000 go on hold',
      guards: [{ message: 'Only orders above 1000 go on hold', passed: false, values: 'entity.total_amount = 120' }],
      changes: [],
      events: [],
      followUps: [],
    });
  });

  it('reads changes, created entities and events, and survives nonsense', () => {
    const view = readDryRun({
      outcome: 'applied',
      changes: [
        { type: 'order', id: 'o1', created: false, before: { state: 'A', data: {} }, after: { state: 'B', data: {} } },
        { created: true, before: null, after: { type: 'variance', id: 'v1', state: 'OPEN', data: { q: 1 } } },
      ],
      events: [{ name: 'order.held' }, 'x', 42],
    });
    expect(view.applied).toBe(true);
    expect(view.changes.map((c) => [c.type, c.id, c.created, c.fields.length])).toEqual([
      ['order', 'o1', false, 1],
      ['variance', 'v1', true, 2],
    ]);
    expect(view.events).toEqual(['order.held', 'x']);
    expect(readDryRun(null)).toEqual({ applied: false, message: null, guards: [], changes: [], events: [], followUps: [] });
  });
});
