import { describe, expect, it } from 'vitest';
import { fromGraph, toGraph } from './graph';
import { examplePackages } from './testPackages';

describe('toGraph / fromGraph', () => {
  const packages = examplePackages();

  it('reads every example package', () => {
    expect(packages.map(([name]) => name)).toContain('chemichemi');
  });

  it.each(packages)('is the identity on every workflow of %s', (_, pkg) => {
    for (const type of pkg.types) {
      if (!type.workflow) continue;
      const back = fromGraph(toGraph(type.workflow));
      // Same JSON, key order included.
      expect(JSON.stringify(back)).toBe(JSON.stringify(type.workflow));
    }
  });

  it('draws the order workflow: ten states, one edge per source state', () => {
    const order = packages.find(([n]) => n === 'chemichemi')?.[1].types.find((t) => t.name === 'order');
    if (!order?.workflow) throw new Error('no order workflow');
    const g = toGraph(order.workflow);
    expect(g.nodes).toHaveLength(10);
    expect(g.nodes[0]).toMatchObject({ id: 'DRAFT', kind: 'initial', label: 'Draft' });
    const cancel = g.edges.filter((e) => e.transition === 'cancelOrder');
    expect(cancel.map((e) => e.source)).toEqual(['PENDING_APPROVAL', 'APPROVED', 'ALLOCATED']);
    expect(new Set(g.edges.map((e) => e.id)).size).toBe(g.edges.length);
  });

  it('numbers parallel edges and marks self-loops', () => {
    const g = toGraph({
      states: { A: { kind: 'initial' }, B: {} },
      transitions: {
        go: { from: ['A'], to: 'B' },
        back: { from: ['B'], to: 'A' },
        again: { from: ['A'], to: 'B' },
        stay: { from: ['B'], to: 'B' },
      },
    });
    const byName = Object.fromEntries(g.edges.map((e) => [e.transition, e]));
    expect(byName.go?.parallel).toEqual({ index: 0, count: 3 });
    expect(byName.back?.parallel).toEqual({ index: 1, count: 3 });
    expect(byName.again?.parallel).toEqual({ index: 2, count: 3 });
    expect(byName.stay).toMatchObject({ selfLoop: true, parallel: { index: 0, count: 1 } });
  });

  it('keeps positions and drops a cleared one', () => {
    const g = toGraph({ states: { A: { kind: 'initial', position: { x: 1, y: 2 } }, B: {} } });
    expect(g.nodes[0]?.position).toEqual({ x: 1, y: 2 });
    const first = g.nodes[0];
    if (first) first.position = null;
    const second = g.nodes[1];
    if (second) second.position = { x: 5, y: 6 };
    expect(fromGraph(g)).toEqual({ states: { A: { kind: 'initial' }, B: { position: { x: 5, y: 6 } } } });
  });
});
