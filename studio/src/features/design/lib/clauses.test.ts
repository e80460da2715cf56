import { describe, expect, it } from 'vitest';
import { clauses, entityContext } from './clauses';

describe('clauses', () => {
  it('takes and/or/! apart and lists the variables of comparisons', () => {
    const rule = { and: [{ '>': [{ var: 'entity.total' }, 1000] }, { '!': { '==': [{ var: 'entity.state' }, 'X'] } }] };
    expect(clauses(rule).map((c) => [c.depth, c.kind, c.text])).toEqual([
      [0, 'rule', JSON.stringify(rule)],
      [1, 'clause', '{">":[{"var":"entity.total"},1000]}'],
      [2, 'variable', '{"var":"entity.total"}'],
      [1, 'clause', '{"!":{"==":[{"var":"entity.state"},"X"]}}'],
      [2, 'clause', '{"==":[{"var":"entity.state"},"X"]}'],
      [3, 'variable', '{"var":"entity.state"}'],
    ]);
  });

  it('keeps literals and caps huge rules', () => {
    expect(clauses(true)).toEqual([{ depth: 0, rule: true, text: 'true', kind: 'rule' }]);
    const big = { and: Array.from({ length: 500 }, (_, i) => ({ '==': [{ var: `x${String(i)}` }, i] })) };
    expect(clauses(big)).toHaveLength(50);
  });

  it('gives an entity as guards see it', () => {
    expect(entityContext({ id: 'e1', state: 'A', data: { n: 1 } }, { id: 'u1', roles: ['admin'] })).toEqual({
      entity: { n: 1, id: 'e1', state: 'A' },
      actor: { id: 'u1', roles: ['admin'] },
      input: {},
    });
  });
});
