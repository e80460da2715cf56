// Where states go on the canvas. A state an admin placed keeps its place: automatic layout only
// places the states that have no position (new ones, or all of them in a workflow never laid
// out). A workflow with no placed state is laid out by ELK's layered algorithm (left to right,
// following the transitions, wrapped onto rows); a new state in a placed workflow goes near the
// state its first transition comes from, clear of the others, where its transitions cross the
// fewest drawn ones.

import type { WorkflowGraph } from './graph';
import type { Position } from './model';

export const NODE_WIDTH = 160;
export const NODE_HEIGHT = 56;
// Wide enough for a transition's label between two states (allocateInventory, completeDelivery) to
// sit clear of both boxes.
const GAP_X = 140;
const GAP_Y = 30;

// ELK is large (a compiled Java library): loaded the first time a layout is needed.
let elk: Promise<{ layout: (g: ElkGraph) => Promise<ElkGraph> }> | null = null;
type ElkGraph = import('elkjs/lib/elk-api').ElkNode;

function loadElk() {
  elk ??= import('elkjs/lib/elk.bundled.js').then(({ default: ELK }) => new ELK());
  return elk;
}

/** Positions of every state by ELK, ignoring any placed one (the "lay out again" command). */
export async function elkLayout(graph: WorkflowGraph): Promise<Record<string, Position>> {
  const result = await (await loadElk()).layout({
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.layered.spacing.nodeNodeBetweenLayers': String(GAP_X),
      'elk.spacing.nodeNode': String(GAP_Y),
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      // A cycle (putOnHold and resume between two states) is broken by the order the package
      // declares the transitions in: the later one runs back. The default (greedy) broke the
      // order's on-hold cycle the other way and sent three of its forward transitions backwards.
      'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
      // A long workflow wraps onto more rows, about as wide as the canvas is: chemichemi's order
      // (1,744 × 205 px in one row, drawn at 0.47 to be seen whole) becomes 1,184 × 451, whole at
      // a readable zoom.
      'elk.layered.wrapping.strategy': 'MULTI_EDGE',
      'elk.aspectRatio': '1.5',
    },
    children: graph.nodes.map((n) => ({ id: n.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
    edges: graph.edges
      .filter((e) => !e.selfLoop)
      .map((e) => ({ id: e.id, sources: [e.source], targets: [e.target] })),
  });
  const out: Record<string, Position> = {};
  for (const c of result.children ?? []) out[c.id] = { x: Math.round(c.x ?? 0), y: Math.round(c.y ?? 0) };
  return out;
}

function overlaps(p: Position, others: Position[]): boolean {
  return others.some((o) => Math.abs(o.x - p.x) < NODE_WIDTH + 20 && Math.abs(o.y - p.y) < NODE_HEIGHT + 20);
}

/** Where an edge is drawn, roughly: the segment between the two states' centres. */
type Segment = [Position, Position];

function centre(p: Position): Position {
  return { x: p.x + NODE_WIDTH / 2, y: p.y + NODE_HEIGHT / 2 };
}

function cross(o: Position, a: Position, b: Position): number {
  return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

/** Whether two segments cross (touching at an end, as edges of one state do, is not crossing). */
export function segmentsCross([a, b]: Segment, [c, d]: Segment): boolean {
  const d1 = cross(c, d, a);
  const d2 = cross(c, d, b);
  const d3 = cross(a, b, c);
  const d4 = cross(a, b, d);
  return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0));
}

/** Whether a segment passes through a state's box (other than its own two ends). */
function throughBox([a, b]: Segment, box: Position): boolean {
  const corners = [
    { x: box.x, y: box.y },
    { x: box.x + NODE_WIDTH, y: box.y },
    { x: box.x + NODE_WIDTH, y: box.y + NODE_HEIGHT },
    { x: box.x, y: box.y + NODE_HEIGHT },
  ];
  const sides: Segment[] = corners.map((c, i) => [c, corners[(i + 1) % 4] ?? c]);
  return sides.some((side) => segmentsCross([a, b], side));
}

/**
 * Positions for the states that have none, leaving placed states where they are. Pure and
 * synchronous when some state is placed; `layoutAll` (ELK) is used when none is.
 *
 * A new state goes where its transitions cross the fewest of the drawn ones and pass through no
 * state: beside the state its first transition comes from (to the right) or goes to (to the
 * left), a row or more above or below that, or under the whole workflow, the nearest of the
 * best. The first free place beside the source, taken whatever it crossed, drew a new state's
 * transitions across the diagram until "Lay out again".
 */
export function placeNewStates(graph: WorkflowGraph): Record<string, Position> | null {
  const placed = new Map<string, Position>();
  for (const n of graph.nodes) if (n.position) placed.set(n.id, n.position);
  if (placed.size === 0) return null;
  const out: Record<string, Position> = {};
  const edges = graph.edges.filter((e) => !e.selfLoop);
  for (const n of graph.nodes) {
    if (n.position) continue;
    const taken = [...placed.values()];
    const drawn: Segment[] = edges.flatMap((e) => {
      const a = placed.get(e.source);
      const b = placed.get(e.target);
      return a && b && e.source !== n.id && e.target !== n.id ? [[centre(a), centre(b)] as Segment] : [];
    });
    const neighbours = edges.flatMap((e) => {
      const other = e.source === n.id ? e.target : e.target === n.id ? e.source : null;
      const p = other === null ? undefined : placed.get(other);
      return p && other !== null ? [{ id: other, p }] : [];
    });
    const incoming = edges.find((e) => e.target === n.id && placed.has(e.source));
    const outgoing = edges.find((e) => e.source === n.id && placed.has(e.target));
    const anchor = incoming ? placed.get(incoming.source) : outgoing ? placed.get(outgoing.target) : undefined;
    const bottom = Math.max(...taken.map((t) => t.y));
    const left = Math.min(...taken.map((t) => t.x));
    const below = { x: left, y: bottom + NODE_HEIGHT + GAP_Y };
    // Beside the anchor, one or two columns over, up to five rows up or down; the side the
    // transition flows to (right of its source, left of its target) before the other.
    const candidates: { p: Position; against: boolean }[] = [];
    if (anchor) {
      const flow = incoming ? 1 : -1;
      for (const side of [flow, -flow]) {
        for (const column of [1, 2]) {
          for (let row = -5; row <= 5; row++) {
            const p = { x: anchor.x + side * column * (NODE_WIDTH + GAP_X), y: anchor.y + row * (NODE_HEIGHT + GAP_Y) };
            if (!overlaps(p, taken)) candidates.push({ p, against: side !== flow });
          }
        }
      }
    }
    let under = below;
    while (overlaps(under, taken)) under = { x: under.x, y: under.y + NODE_HEIGHT + GAP_Y };
    candidates.push({ p: under, against: false });
    const cost = ({ p, against }: { p: Position; against: boolean }) => {
      const mine: Segment[] = neighbours.map((nb) => [centre(p), centre(nb.p)]);
      let crossings = 0;
      for (const m of mine) {
        for (const d of drawn) if (segmentsCross(m, d)) crossings += 1;
        for (const [id, box] of placed) if (!neighbours.some((nb) => nb.id === id) && throughBox(m, box)) crossings += 1;
      }
      const from = anchor ?? below;
      // Fewest crossings first, then the flow's side, then the nearest.
      return crossings * 1e7 + (against ? 1e6 : 0) + Math.hypot(p.x - from.x, p.y - from.y);
    };
    let best = under;
    let bestCost = Infinity;
    for (const c of candidates) {
      const k = cost(c);
      if (k < bestCost) {
        best = c.p;
        bestCost = k;
      }
    }
    const p = best;
    placed.set(n.id, p);
    out[n.id] = p;
  }
  return out;
}

/**
 * The graph with each state that has no position of its own where it is shown now (`shown`: the
 * places the view computed before this edit). Adding a state to a workflow never laid out then
 * places the new state only: ELK laid out again on every edit moved every state, and the layout
 * it found for eleven states was more tangled than the one the admin was looking at.
 */
export function keepShown(graph: WorkflowGraph, shown: Record<string, Position>): WorkflowGraph {
  return { ...graph, nodes: graph.nodes.map((n) => (n.position || !shown[n.id] ? n : { ...n, position: shown[n.id] ?? null })) };
}

/** Of `ids`, the states with no transition to or from another state. */
export function looseStates(graph: WorkflowGraph, ids: string[]): string[] {
  const joined = new Set(graph.edges.filter((e) => !e.selfLoop).flatMap((e) => [e.source, e.target]));
  return ids.filter((id) => !joined.has(id));
}

/**
 * The shown places to keep after an edit: those of states still in the workflow, except a state
 * that was loose (placed under the others, with no transition) and now has a transition: it is
 * placed again, beside its neighbour, as a state added with its transition would be.
 */
export function keptPlaces(graph: WorkflowGraph, shown: Record<string, Position>, loose: string[]): Record<string, Position> {
  const ids = new Set(graph.nodes.map((n) => n.id));
  const stillLoose = new Set(looseStates(graph, loose));
  return Object.fromEntries(
    Object.entries(shown).filter(([id]) => ids.has(id) && (!loose.includes(id) || stillLoose.has(id))),
  );
}

/** Positions for the unplaced states: beside their neighbours, or by ELK when nothing is placed. */
export async function positionsFor(graph: WorkflowGraph): Promise<Record<string, Position>> {
  return placeNewStates(graph) ?? (await elkLayout(graph));
}

/** The zoom of the first view: never below this (labels stay readable), never above `MAX`. */
export const FIRST_VIEW_MIN_ZOOM = 0.7;
const FIRST_VIEW_MAX_ZOOM = 1.2;
const FIRST_VIEW_PADDING = 24;
/** Kept clear on the left of the first view: the zoom controls sit there, over the canvas. */
const FIRST_VIEW_LEFT = 64;

/**
 * The first view of a workflow drawn in a canvas of `size`: the whole graph, centred, when it
 * fits at a readable zoom; else at that zoom, from its start (the left edge, where the initial
 * state is), centred vertically: the rest is a pan away. (Fitting a long workflow whole made
 * its labels unreadable.) The zoom controls' strip on the left is kept clear.
 */
export function firstViewport(
  bounds: { x: number; y: number; width: number; height: number },
  size: { width: number; height: number },
): { x: number; y: number; zoom: number } {
  const pad = FIRST_VIEW_PADDING;
  const left = FIRST_VIEW_LEFT;
  const room = size.width - left - pad;
  const fit = Math.min(room / Math.max(bounds.width, 1), (size.height - 2 * pad) / Math.max(bounds.height, 1));
  const zoom = Math.min(Math.max(fit, FIRST_VIEW_MIN_ZOOM), FIRST_VIEW_MAX_ZOOM);
  const w = bounds.width * zoom;
  const h = bounds.height * zoom;
  const x = w <= room ? left + (room - w) / 2 - bounds.x * zoom : left - bounds.x * zoom;
  const y = h + 2 * pad <= size.height ? (size.height - h) / 2 - bounds.y * zoom : pad - bounds.y * zoom;
  return { x, y, zoom };
}

/**
 * The nodes `next`, each with the size React Flow measured for the node of the same id in
 * `current` (a node passed without one loses its handles' positions, and so its edges, until it
 * is measured again).
 */
export function keepMeasured<N extends { id: string; measured?: { width?: number; height?: number } }>(next: N[], current: N[]): N[] {
  const measured = new Map(current.filter((n) => n.measured).map((n) => [n.id, n.measured]));
  return next.map((n) => {
    const m = n.measured ?? measured.get(n.id);
    return m ? { ...n, measured: m } : n;
  });
}

/** The space kept between a dropped state and the others. */
const DROP_GAP = 16;

/**
 * Where states dropped at `moved` go so that none covers another: each one that overlaps a state
 * (of `all`, the others' places) moves to the nearest place that overlaps none, in steps of half
 * a state; the others keep theirs. A state dropped on another hid it and its transitions.
 */
export function clearOfOthers(moved: Record<string, Position>, all: Record<string, Position>): Record<string, Position> {
  const taken = Object.entries({ ...all, ...moved });
  const overlaps = (id: string, p: Position, placed: [string, Position][]) =>
    placed.some(
      ([other, q]) =>
        other !== id && Math.abs(p.x - q.x) < NODE_WIDTH + DROP_GAP && Math.abs(p.y - q.y) < NODE_HEIGHT + DROP_GAP,
    );
  const stepX = (NODE_WIDTH + DROP_GAP) / 2;
  const stepY = (NODE_HEIGHT + DROP_GAP) / 2;
  const offsets: [number, number][] = [];
  for (let i = -6; i <= 6; i++) for (let j = -6; j <= 6; j++) offsets.push([i * stepX, j * stepY]);
  offsets.sort((a, b) => Math.hypot(a[0], a[1]) - Math.hypot(b[0], b[1]) || a[1] - b[1] || a[0] - b[0]);
  const out: Record<string, Position> = {};
  let placed = taken;
  for (const [id, p] of Object.entries(moved)) {
    const free = offsets.map(([dx, dy]) => ({ x: p.x + dx, y: p.y + dy })).find((q) => !overlaps(id, q, placed)) ?? p;
    out[id] = free;
    placed = placed.map(([other, q]) => [other, other === id ? free : q]);
  }
  return out;
}
