import { describe, expect, it } from 'vitest';
import { expressible, fromQuery, guardFields, toQuery, withQueryFields } from './guardQuery';
import { chemichemi, examplePackages } from './testPackages';
import { findType } from './model';

/** Every guard of every example package, with where it is. */
function allGuards(): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [name, pkg] of examplePackages()) {
    for (const t of pkg.types) {
      for (const [tr, def] of Object.entries(t.workflow?.transitions ?? {})) {
        (def.guards ?? []).forEach((g, i) => {
          out.push([`${name}/${t.name}.${tr}#${String(i + 1)}`, g.rule]);
        });
      }
    }
    const rules = pkg.tenant.rules;
    if (rules && typeof rules === 'object') {
      for (const [r, rule] of Object.entries(rules as Record<string, unknown>)) out.push([`${name}/rules.${r}`, rule]);
    }
  }
  return out;
}

describe('guards as queries', () => {
  it('gives every expressible guard of the examples back exactly, and most of them are', () => {
    const guards = allGuards();
    let shown = 0;
    for (const [where, rule] of guards) {
      const q = toQuery(rule);
      if (q === null) continue;
      shown += 1;
      expect(JSON.stringify(fromQuery(q)), where).toBe(JSON.stringify(rule));
      // The query survives a JSON round trip too (what the editor keeps in its state).
      expect(JSON.stringify(fromQuery(JSON.parse(JSON.stringify(q)) as typeof q)), where).toBe(JSON.stringify(rule));
    }
    // Iteration (`some`, `all`, `reduce`), arithmetic and `if` stay JSON-Logic; the rest is shown.
    console.log(`${String(shown)} of ${String(guards.length)} example guards and rules are editable as rules`);
    expect(shown / guards.length).toBeGreaterThan(0.6);
  });

  it('reads the forms the chemichemi order guards use', () => {
    const cases: unknown[] = [
      { '==': [{ var: 'customer.state' }, 'ACTIVE'] },
      { in: [{ var: 'trip.state' }, ['PLANNED', 'DISPATCHED']] },
      { '==': [{ var: 'trip.warehouse_id' }, { var: 'entity.warehouse_id' }] },
      { '!!': [{ var: 'customer' }] },
      { rule: 'has_items' },
      { '!': [{ rule: 'needs_cab' }] },
      { '!': [{ var: 'entity.escalated' }] },
      { or: [{ in: ['cab', { var: 'actor.roles' }] }, { '==': [{ var: 'entity.escalated' }, true] }] },
      { and: [{ '>': [{ var: 'entity.total_amount' }, 1000] }, { or: [{ '==': [{ var: 'entity.risk' }, 'low'] }, { '!!': [{ var: 'entity.rollback_plan' }] }] }] },
      { '!': { or: [{ '==': [{ var: 'entity.risk' }, 'low'] }, { '<': [{ var: 'entity.n' }, 2] }] } },
    ];
    for (const rule of cases) expect(expressible(rule), JSON.stringify(rule)).toBe(true);
    const q = toQuery(cases[8]);
    expect(q?.combinator).toBe('and');
    expect(q?.rules).toHaveLength(2);
  });

  it('leaves what it cannot show as JSON-Logic', () => {
    for (const rule of [
      { some: [{ var: 'entity.items' }, { '>': [{ var: 'quantity' }, 0] }] },
      { '>': [{ '+': [{ var: 'entity.a' }, 1] }, 2] },
      { if: [true, 1, 2] },
      { '!!': [{ or: [{ var: 'entity.email' }, { var: 'entity.phone' }] }] },
      'not an object',
      [1, 2],
    ]) {
      expect(toQuery(rule), JSON.stringify(rule)).toBeNull();
    }
  });

  it('writes an edited query as a guard keeps it', () => {
    expect(fromQuery({ combinator: 'and', rules: [] })).toBe(true);
    expect(fromQuery({ combinator: 'and', rules: [{ field: 'entity.total', operator: '>=', value: 5 }] })).toEqual({
      '>=': [{ var: 'entity.total' }, 5],
    });
    expect(
      fromQuery({
        combinator: 'or',
        rules: [
          { field: 'entity.kind', operator: '=', value: 'x' },
          { field: 'rule:needs_cab', operator: 'fails', value: '' },
          { combinator: 'and', rules: [{ field: 'entity.note', operator: 'truthy', value: '' }] },
        ],
      }),
    ).toEqual({ or: [{ '==': [{ var: 'entity.kind' }, 'x'] }, { '!': [{ rule: 'needs_cab' }] }, { and: [{ '!!': [{ var: 'entity.note' }] }] }] });
  });

  it('offers the context’s values: entity, input, actor, loads and named rules', () => {
    const pkg = chemichemi();
    const order = findType(pkg, 'order');
    if (!order) throw new Error('no order');
    const dispatch = order.workflow?.transitions?.dispatchOrder;
    const names = guardFields(pkg, order, dispatch).map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['entity.total_amount', 'entity.state', 'actor.roles', 'trip', 'trip.state', 'trip.warehouse_id', 'rule:has_items']));
    const numeric = guardFields(pkg, order, dispatch).find((f) => f.name === 'entity.total_amount');
    expect(numeric?.inputType).toBe('number');
    // A path the guard reads that the list lacks is offered too.
    const q = toQuery({ '==': [{ var: 'entity.delivery_address.city' }, 'Nairobi'] });
    if (!q) throw new Error('not expressible');
    expect(withQueryFields([], q).map((f) => f.name)).toEqual(['entity.delivery_address.city']);
  });
});
