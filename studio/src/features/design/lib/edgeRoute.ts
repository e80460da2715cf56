// How a transition is drawn between two states: a quadratic curve from the border of one state
// to the border of the other, facing each other (not always from the right side to the left:
// a transition to a state below went out to the right and came back across its own state), bent
// around the states it would otherwise cross (a line drawn behind a state looks like it ends
// there). Pure geometry; the canvas gives the states' rectangles.

export interface Point {
  x: number;
  y: number;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Route {
  from: Point;
  control: Point;
  to: Point;
  /** The curve's middle, where its label goes. */
  label: Point;
}

/** Space kept between a curve and a state it passes. */
export const CLEARANCE = 10;
/** How far a curve's middle moves per try when it must go round a state. */
const STEP = 30;
const MAX_TRIES = 14;
const SAMPLES = 32;

const centre = (r: Rect): Point => ({ x: r.x + r.width / 2, y: r.y + r.height / 2 });

/** Where the line from the centre of `r` towards `toward` leaves `r`. */
export function borderPoint(r: Rect, toward: Point): Point {
  const c = centre(r);
  const dx = toward.x - c.x;
  const dy = toward.y - c.y;
  if (dx === 0 && dy === 0) return { x: r.x + r.width, y: c.y };
  const sx = dx === 0 ? Infinity : r.width / 2 / Math.abs(dx);
  const sy = dy === 0 ? Infinity : r.height / 2 / Math.abs(dy);
  const s = Math.min(sx, sy);
  return { x: c.x + dx * s, y: c.y + dy * s };
}

/** The point at `t` (0..1) of the quadratic curve `a`, `c`, `b`. */
export function at(a: Point, c: Point, b: Point, t: number): Point {
  const u = 1 - t;
  return { x: u * u * a.x + 2 * u * t * c.x + t * t * b.x, y: u * u * a.y + 2 * u * t * c.y + t * t * b.y };
}

const inside = (p: Point, r: Rect, margin: number) =>
  p.x > r.x - margin && p.x < r.x + r.width + margin && p.y > r.y - margin && p.y < r.y + r.height + margin;

/** How many points of the curve fall on (or within `CLEARANCE` of) one of `obstacles`. */
export function crossings(a: Point, c: Point, b: Point, obstacles: Rect[]): number {
  // The curve lies within the triangle of its three points: only the states that come near that
  // triangle's box can be crossed (a large workflow has many states, few near any one curve).
  const [left, right] = [Math.min(a.x, b.x, c.x) - CLEARANCE, Math.max(a.x, b.x, c.x) + CLEARANCE];
  const [top, bottom] = [Math.min(a.y, b.y, c.y) - CLEARANCE, Math.max(a.y, b.y, c.y) + CLEARANCE];
  const near = obstacles.filter((r) => r.x < right && r.x + r.width > left && r.y < bottom && r.y + r.height > top);
  if (near.length === 0) return 0;
  let n = 0;
  for (let i = 1; i < SAMPLES; i++) {
    const p = at(a, c, b, i / SAMPLES);
    if (near.some((r) => inside(p, r, CLEARANCE))) n += 1;
  }
  return n;
}

function curve(source: Rect, target: Rect, offset: number): { from: Point; control: Point; to: Point } {
  const s = centre(source);
  const t = centre(target);
  const dx = t.x - s.x;
  const dy = t.y - s.y;
  const len = Math.hypot(dx, dy) || 1;
  // The control point sits off the middle, square to the line between the centres; the curve's
  // middle is half as far off as the control point.
  const control = { x: (s.x + t.x) / 2 - (dy / len) * offset * 2, y: (s.y + t.y) / 2 + (dx / len) * offset * 2 };
  return { from: borderPoint(source, control), control, to: borderPoint(target, control) };
}

/**
 * The curve of a transition from `source` to `target`, bent by `bend` (transitions between the
 * same two states are drawn apart) and, when that curve would cross one of `obstacles` (the other
 * states), bent further to whichever side clears them all first; if no bend does, the one that
 * crosses least. Its label sits at `labelAt` along it (0 at the source, 1 at the target): the
 * middle, or apart from the labels of the transitions that share its two states.
 */
export function routeEdge(source: Rect, target: Rect, obstacles: Rect[], bend = 0, labelAt = 0.5): Route {
  let best = curve(source, target, bend);
  let least = crossings(best.from, best.control, best.to, obstacles);
  for (let i = 1; i <= MAX_TRIES && least > 0; i++) {
    for (const sign of bend < 0 ? [-1, 1] : [1, -1]) {
      const c = curve(source, target, bend + sign * i * STEP);
      const n = crossings(c.from, c.control, c.to, obstacles);
      if (n < least) {
        best = c;
        least = n;
        if (n === 0) break;
      }
    }
  }
  return { ...best, label: at(best.from, best.control, best.to, labelAt) };
}

/**
 * Where along its curve the label of one of `count` transitions between the same two states goes
 * (`index` among them; `canonical` 1 when it runs the pair's canonical way, -1 when it runs back):
 * spread a fifth of the curve apart, measured from the same end for both directions, so that two
 * labels never share the middle.
 */
export function parallelLabelAt(index: number, count: number, canonical: 1 | -1): number {
  return 0.5 + (index - (count - 1) / 2) * 0.2 * canonical;
}

/** The SVG path of a route. */
export function routePath(r: Route): string {
  const n = (v: number) => String(Math.round(v * 10) / 10);
  return `M ${n(r.from.x)} ${n(r.from.y)} Q ${n(r.control.x)} ${n(r.control.y)} ${n(r.to.x)} ${n(r.to.y)}`;
}
