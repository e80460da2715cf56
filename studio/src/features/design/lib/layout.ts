// Where states go on the canvas. A state an admin placed keeps its place: automatic layout only
// places the states that have no position (new ones, or all of them in a workflow never laid
// out). A workflow with no placed state is laid out by ELK's layered algorithm (left to right,
// following the transitions, wrapped onto rows); a new state in a placed workflow goes beside
// the state its first transition comes from, clear of the others.

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

/**
 * Positions for the states that have none, leaving placed states where they are. Pure and
 * synchronous when some state is placed; `layoutAll` (ELK) is used when none is.
 */
export function placeNewStates(graph: WorkflowGraph): Record<string, Position> | null {
  const placed = new Map<string, Position>();
  for (const n of graph.nodes) if (n.position) placed.set(n.id, n.position);
  if (placed.size === 0) return null;
  const out: Record<string, Position> = {};
  for (const n of graph.nodes) {
    if (n.position) continue;
    const taken = [...placed.values()];
    const incoming = graph.edges.find((e) => e.target === n.id && placed.has(e.source));
    const outgoing = graph.edges.find((e) => e.source === n.id && placed.has(e.target));
    const anchor = incoming
      ? placed.get(incoming.source)
      : outgoing
        ? placed.get(outgoing.target)
        : undefined;
    let p: Position;
    if (anchor) {
      p = { x: anchor.x + (incoming ? 1 : -1) * (NODE_WIDTH + GAP_X), y: anchor.y };
    } else {
      const bottom = Math.max(...taken.map((t) => t.y));
      const left = Math.min(...taken.map((t) => t.x));
      p = { x: left, y: bottom + NODE_HEIGHT + GAP_Y };
    }
    while (overlaps(p, taken)) p = { x: p.x, y: p.y + NODE_HEIGHT + GAP_Y };
    placed.set(n.id, p);
    out[n.id] = p;
  }
  return out;
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
