import { describe, expect, it } from 'vitest';
import { toGraph } from './graph';
import { NODE_HEIGHT, NODE_WIDTH, elkLayout, placeNewStates, positionsFor, firstViewport, keepMeasured, clearOfOthers, segmentsCross, keepShown, keptPlaces, looseStates } from './layout';
import { chemichemi } from './testPackages';

function orderGraph() {
  const wf = chemichemi().types.find((t) => t.name === 'order')?.workflow;
  if (!wf) throw new Error('no order workflow');
  return toGraph(wf);
}

describe('layout', () => {
  it('lays out a workflow never laid out, left to right, without overlaps', async () => {
    const g = orderGraph();
    const pos = await positionsFor(g);
    expect(Object.keys(pos)).toHaveLength(10);
    const draft = pos.DRAFT;
    const delivered = pos.DELIVERED;
    if (!draft || !delivered) throw new Error('missing');
    expect(delivered.x).toBeGreaterThan(draft.x);
    const list = Object.values(pos);
    for (const [i, a] of list.entries()) {
      for (const b of list.slice(i + 1)) {
        const apart = Math.abs(a.x - b.x) >= NODE_WIDTH || Math.abs(a.y - b.y) >= NODE_HEIGHT;
        expect(apart).toBe(true);
      }
    }
  });

  it('never moves a placed state; a new one goes beside its source, clear of others', async () => {
    const g = orderGraph();
    const all = await elkLayout(g);
    for (const n of g.nodes) n.position = all[n.id] ?? null;
    g.nodes.push({ id: 'ON_HOLD', kind: 'active', label: 'ON_HOLD', position: null, def: {} });
    g.edges.push({
      id: 'putOnHold@PENDING_APPROVAL',
      transition: 'putOnHold',
      label: 'putOnHold',
      source: 'PENDING_APPROVAL',
      target: 'ON_HOLD',
      selfLoop: false,
      parallel: { index: 0, count: 1 },
    });
    const placed = placeNewStates(g);
    expect(Object.keys(placed ?? {})).toEqual(['ON_HOLD']);
    const p = placed?.ON_HOLD;
    const source = all.PENDING_APPROVAL;
    if (!p || !source) throw new Error('missing');
    expect(p.x).toBeGreaterThan(source.x);
    for (const other of Object.values(all)) {
      expect(Math.abs(other.x - p.x) >= NODE_WIDTH || Math.abs(other.y - p.y) >= NODE_HEIGHT).toBe(true);
    }
  });

  it('puts a new state where its transition crosses no drawn one, on the side the transition flows to', () => {
    // A and B placed side by side, X below-left and Y above-right of A: the edge X → Y runs
    // through the place right of A, the first free place beside A.
    const node = (id: string, x: number, y: number) => ({ id, kind: 'active' as const, label: id, position: { x, y }, def: {} });
    const edge = (source: string, target: string) => ({
      id: `${source}-${target}@${source}`,
      transition: `${source}-${target}`,
      label: '',
      source,
      target,
      selfLoop: false,
      parallel: { index: 0, count: 1 },
    });
    const g = orderGraph();
    g.nodes = [node('A', 0, 0), node('X', 0, 300), node('Y', 500, -300), { ...node('NEW', 0, 0), position: null }];
    g.edges = [edge('X', 'Y'), edge('A', 'NEW')];
    const p = placeNewStates(g)?.NEW;
    if (!p) throw new Error('not placed');
    const centre = (q: { x: number; y: number }) => ({ x: q.x + NODE_WIDTH / 2, y: q.y + NODE_HEIGHT / 2 });
    const drawn: [{ x: number; y: number }, { x: number; y: number }] = [centre({ x: 0, y: 300 }), centre({ x: 500, y: -300 })];
    // The old rule's place (right of A, same row) crosses X → Y; the place chosen does not.
    expect(segmentsCross([centre({ x: 0, y: 0 }), centre({ x: 300, y: 0 })], drawn)).toBe(true);
    expect(segmentsCross([centre({ x: 0, y: 0 }), centre(p)], drawn)).toBe(false);
    // Right of A, as the transition flows, though a row or more away from A's.
    expect(p.x).toBeGreaterThan(0);
    expect(p.y).not.toBe(0);
    for (const q of [{ x: 0, y: 0 }, { x: 0, y: 300 }, { x: 500, y: -300 }]) {
      expect(Math.abs(q.x - p.x) >= NODE_WIDTH || Math.abs(q.y - p.y) >= NODE_HEIGHT).toBe(true);
    }
  });

  it('keeps the states of a workflow never laid out where they are shown when one is added', async () => {
    const g = orderGraph();
    const shown = await positionsFor(g);
    g.nodes.push({ id: 'ON_HOLD', kind: 'active', label: 'ON_HOLD', position: null, def: {} });
    g.edges.push({
      id: 'putOnHold@PENDING_APPROVAL',
      transition: 'putOnHold',
      label: 'putOnHold',
      source: 'PENDING_APPROVAL',
      target: 'ON_HOLD',
      selfLoop: false,
      parallel: { index: 0, count: 1 },
    });
    // Only the new state gets a place; the ten shown keep theirs.
    const placed = await positionsFor(keepShown(g, shown));
    expect(Object.keys(placed)).toEqual(['ON_HOLD']);
    // Nothing shown yet (the first view): ELK places every state.
    expect(Object.keys(await positionsFor(keepShown(g, {})))).toHaveLength(11);
  });

  it('places a state added without a transition again once it has one, beside its neighbour', async () => {
    const g = orderGraph();
    const shown = await positionsFor(g);
    g.nodes.push({ id: 'ON_HOLD', kind: 'active', label: 'ON_HOLD', position: null, def: {} });
    // Added alone: under the others, and loose.
    const first = { ...shown, ...(await positionsFor(keepShown(g, shown))) };
    expect(looseStates(g, Object.keys(first))).toEqual(['ON_HOLD']);
    expect(first.ON_HOLD?.y).toBeGreaterThan(Math.max(...Object.values(shown).map((p) => p.y)));
    // Its first transition drawn: its place is not kept, every other is.
    g.edges.push({
      id: 'putOnHold@PENDING_APPROVAL',
      transition: 'putOnHold',
      label: 'putOnHold',
      source: 'PENDING_APPROVAL',
      target: 'ON_HOLD',
      selfLoop: false,
      parallel: { index: 0, count: 1 },
    });
    const kept = keptPlaces(g, first, ['ON_HOLD']);
    expect(Object.keys(kept).sort()).toEqual(Object.keys(shown).sort());
    const again = await positionsFor(keepShown(g, kept));
    const source = shown.PENDING_APPROVAL;
    if (!again.ON_HOLD || !source) throw new Error('not placed');
    expect(again.ON_HOLD.x).toBeGreaterThan(source.x);
    // A state that stays loose keeps its place.
    g.nodes.push({ id: 'LONE', kind: 'active', label: 'LONE', position: null, def: {} });
    expect(keptPlaces(g, { LONE: { x: 1, y: 2 } }, ['LONE'])).toEqual({ LONE: { x: 1, y: 2 } });
  });

  it('runs a cycle back along the transition declared last, the rest left to right', async () => {
    const g = orderGraph();
    g.nodes.push({ id: 'ON_HOLD', kind: 'active', label: 'ON_HOLD', position: null, def: {} });
    const edge = (source: string, target: string, transition: string) => ({
      id: `${transition}@${source}`,
      transition,
      label: transition,
      source,
      target,
      selfLoop: false,
      parallel: { index: 0, count: 1 },
    });
    g.edges.push(edge('PENDING_APPROVAL', 'ON_HOLD', 'putOnHold'), edge('ON_HOLD', 'PENDING_APPROVAL', 'resume'));
    const pos = await elkLayout(g);
    const back = g.edges.filter((e) => (pos[e.target]?.x ?? 0) < (pos[e.source]?.x ?? 0)).map((e) => e.transition);
    // `resume` closes the cycle; `startDelivery` is where the long workflow wraps onto a new row.
    expect(back.sort()).toEqual(['resume', 'startDelivery']);
  });

  it('tells crossing segments from ones that only meet at an end', () => {
    expect(segmentsCross([{ x: 0, y: 0 }, { x: 10, y: 10 }], [{ x: 0, y: 10 }, { x: 10, y: 0 }])).toBe(true);
    expect(segmentsCross([{ x: 0, y: 0 }, { x: 10, y: 10 }], [{ x: 10, y: 10 }, { x: 20, y: 0 }])).toBe(false);
    expect(segmentsCross([{ x: 0, y: 0 }, { x: 10, y: 0 }], [{ x: 0, y: 5 }, { x: 10, y: 5 }])).toBe(false);
  });

  it('answers null when nothing is placed (ELK lays it all out)', () => {
    expect(placeNewStates(orderGraph())).toBeNull();
  });
});

describe('the first view', () => {
  it('centres a graph that fits, and starts a long one at its left edge, readable', () => {
    // Fits at zoom 1.2 at most.
    expect(firstViewport({ x: 0, y: 0, width: 400, height: 100 }, { width: 800, height: 600 })).toEqual({ x: 64 + (800 - 64 - 24 - 480) / 2, y: 240, zoom: 1.2 });
    // A long workflow: zoom 0.7 (not the 0.45 that fitting it whole would need), from its start.
    const v = firstViewport({ x: 10, y: 20, width: 1800, height: 300 }, { width: 830, height: 560 });
    expect(v.zoom).toBe(0.7);
    expect(v.x).toBeCloseTo(64 - 7, 5); // clear of the zoom controls
    expect(v.y).toBeCloseTo((560 - 210) / 2 - 14);
  });
});

describe('keepMeasured', () => {
  it('keeps each node’s measured size by id, and drops those of nodes that are gone', () => {
    const current = [
      { id: 'A', measured: { width: 160, height: 56 } },
      { id: 'B' },
      { id: 'GONE', measured: { width: 1, height: 1 } },
    ];
    const next = [{ id: 'B' }, { id: 'A' }, { id: 'NEW' }];
    expect(keepMeasured(next, current)).toEqual([{ id: 'B' }, { id: 'A', measured: { width: 160, height: 56 } }, { id: 'NEW' }]);
  });

  it('leaves a size the new node already has', () => {
    const next = [{ id: 'A', measured: { width: 200, height: 60 } }];
    expect(keepMeasured(next, [{ id: 'A', measured: { width: 160, height: 56 } }])).toEqual(next);
  });
});

describe('clearOfOthers', () => {
  const others = { A: { x: 0, y: 0 }, B: { x: 400, y: 0 } };

  it('leaves a state dropped in free space where it is', () => {
    expect(clearOfOthers({ C: { x: 0, y: 200 } }, { ...others, C: { x: 900, y: 900 } })).toEqual({ C: { x: 0, y: 200 } });
  });

  it('moves a state dropped on another to the nearest free place, clear of every state', () => {
    const { C } = clearOfOthers({ C: { x: 10, y: 5 } }, { ...others, C: { x: 900, y: 900 } });
    if (!C) throw new Error('no place');
    for (const q of Object.values(others)) {
      expect(Math.abs(C.x - q.x) >= NODE_WIDTH + 16 || Math.abs(C.y - q.y) >= NODE_HEIGHT + 16).toBe(true);
    }
    // Nearest: one row of half-steps away, not across the canvas.
    expect(Math.hypot(C.x - 10, C.y - 5)).toBeLessThanOrEqual(NODE_HEIGHT + 16);
  });

  it('keeps two states dropped together apart from each other too', () => {
    const out = clearOfOthers({ C: { x: 200, y: 300 }, D: { x: 210, y: 300 } }, others);
    const [c, d] = [out.C, out.D];
    if (!c || !d) throw new Error('no place');
    expect(Math.abs(c.x - d.x) >= NODE_WIDTH + 16 || Math.abs(c.y - d.y) >= NODE_HEIGHT + 16).toBe(true);
  });
});
