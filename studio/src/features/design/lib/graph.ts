// A workflow as a graph, and back. A state is a node; a transition is one edge per state it
// may be fired from (a transition from three states is three edges with one name). Edges
// between the same two states (in either direction) are numbered so they can be drawn apart,
// and an edge whose ends are the same state is a self-loop.
//
// `toGraph` then `fromGraph` gives back the workflow it started from, key order included: the
// graph keeps each state's and transition's definition, and the order they were declared in.

import type { Position, StateJson, StateKind, TransitionJson, WorkflowJson } from './model';
import { stateKind } from './model';

export interface StateNode {
  id: string;
  kind: StateKind;
  label: string;
  /** Where an admin placed it; none when the layout should place it. */
  position: Position | null;
  def: StateJson;
}

export interface TransitionEdge {
  /** `{transition}@{from}`: unique, since a transition lists a state once. */
  id: string;
  transition: string;
  label: string;
  source: string;
  target: string;
  selfLoop: boolean;
  /** Among the edges joining the same two states (either way): this one's index and their count. */
  parallel: { index: number; count: number };
}

export interface WorkflowGraph {
  nodes: StateNode[];
  edges: TransitionEdge[];
  /** The transitions' definitions, in declaration order (an edge refers to one by name). */
  transitions: [string, TransitionJson][];
  /** The workflow's other keys, kept as they are. */
  rest: Omit<WorkflowJson, 'states' | 'transitions'>;
  /** Whether the workflow had a `transitions` key (absent and `{}` both mean none). */
  hadTransitions: boolean;
}

export function edgeId(transition: string, from: string): string {
  return `${transition}@${from}`;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

export function toGraph(workflow: WorkflowJson): WorkflowGraph {
  const { states, transitions, ...rest } = workflow;
  const nodes: StateNode[] = Object.entries(states).map(([id, def]) => ({
    id,
    kind: stateKind(def),
    label: def.label ?? id,
    position: def.position ?? null,
    def,
  }));
  const list = Object.entries(transitions ?? {});
  const edges: TransitionEdge[] = [];
  for (const [name, t] of list) {
    // The create transition (`create: true`) leaves no state: it has no edge.
    for (const from of t.from ?? []) {
      edges.push({
        id: edgeId(name, from),
        transition: name,
        label: t.label ?? name,
        source: from,
        target: t.to,
        selfLoop: from === t.to,
        parallel: { index: 0, count: 1 },
      });
    }
  }
  const groups = new Map<string, TransitionEdge[]>();
  for (const e of edges) {
    const key = pairKey(e.source, e.target);
    const group = groups.get(key);
    if (group) group.push(e);
    else groups.set(key, [e]);
  }
  for (const group of groups.values()) {
    group.forEach((e, index) => {
      e.parallel = { index, count: group.length };
    });
  }
  return { nodes, edges, transitions: list, rest, hadTransitions: transitions !== undefined };
}

/** The workflow of a graph: states in node order with their positions, transitions as declared. */
export function fromGraph(graph: WorkflowGraph): WorkflowJson {
  const states: Record<string, StateJson> = {};
  for (const node of graph.nodes) {
    const def: StateJson = { ...node.def };
    if (node.position) def.position = node.position;
    else delete def.position;
    states[node.id] = def;
  }
  const workflow: WorkflowJson = { states };
  if (graph.hadTransitions || graph.transitions.length > 0) {
    workflow.transitions = Object.fromEntries(graph.transitions);
  }
  return { ...workflow, ...graph.rest };
}
