import { describe, expect, it } from 'vitest';
import { at, borderPoint, crossings, parallelLabelAt, routeEdge, routePath, type Rect } from './edgeRoute';

const box = (x: number, y: number): Rect => ({ x, y, width: 160, height: 56 });

describe('borderPoint', () => {
  it('leaves a state on the side facing the other', () => {
    const r = box(0, 0); // centre (80, 28)
    expect(borderPoint(r, { x: 500, y: 28 })).toEqual({ x: 160, y: 28 });
    expect(borderPoint(r, { x: -500, y: 28 })).toEqual({ x: 0, y: 28 });
    expect(borderPoint(r, { x: 80, y: 400 })).toEqual({ x: 80, y: 56 });
    const corner = borderPoint(r, { x: 80 + 160, y: 28 + 56 });
    expect(corner.x).toBeCloseTo(160);
    expect(corner.y).toBeCloseTo(56);
  });
});

describe('routeEdge', () => {
  it('draws a state below from its bottom to the top of the other, not out to the right and back', () => {
    const route = routeEdge(box(0, 0), box(0, 150), []);
    expect(route.from).toEqual({ x: 80, y: 56 });
    expect(route.to).toEqual({ x: 80, y: 150 });
    expect(routePath(route)).toBe('M 80 56 Q 80 103 80 150');
  });

  it('goes round a state in the way, and the label stays on the curve', () => {
    const [a, b, between] = [box(0, 0), box(600, 0), box(300, 0)];
    const straight = routeEdge(a, b, []);
    expect(crossings(straight.from, straight.control, straight.to, [between])).toBeGreaterThan(0);
    const route = routeEdge(a, b, [between]);
    expect(crossings(route.from, route.control, route.to, [between])).toBe(0);
    expect(route.label).toEqual(at(route.from, route.control, route.to, 0.5));
    // The curve's middle passes above or below the state, clear of it.
    expect(route.label.y < between.y - 10 || route.label.y > between.y + between.height + 10).toBe(true);
  });

  it('keeps transitions between the same states apart, each clear of the others in the way', () => {
    const [a, b, between] = [box(0, 0), box(600, 0), box(300, 0)];
    const up = routeEdge(a, b, [between], 23);
    const down = routeEdge(a, b, [between], -23);
    expect(crossings(up.from, up.control, up.to, [between])).toBe(0);
    expect(crossings(down.from, down.control, down.to, [between])).toBe(0);
    expect(Math.sign(up.label.y - 28)).not.toBe(Math.sign(down.label.y - 28));
  });

  it('takes the least crossing when nothing clears', () => {
    // A wall of states taller than any bend: the straight line is as good as any.
    const wall = Array.from({ length: 40 }, (_, i) => box(300, -2000 + i * 100));
    const route = routeEdge(box(0, 0), box(600, 0), wall);
    expect(Number.isFinite(route.control.x) && Number.isFinite(route.control.y)).toBe(true);
  });
});

describe('parallelLabelAt', () => {
  it('puts the labels of A→B and B→A at different places between A and B', () => {
    // Measured from A: A→B's label at t, B→A's at 1 - t (its own t runs from B).
    for (const [forward, back] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const ab = parallelLabelAt(forward, 2, 1);
      const baFromA = 1 - parallelLabelAt(back, 2, -1);
      expect(Math.abs(ab - baFromA)).toBeCloseTo(0.2);
    }
    expect(parallelLabelAt(0, 1, 1)).toBe(0.5);
    expect(parallelLabelAt(0, 1, -1)).toBe(0.5);
  });
});
