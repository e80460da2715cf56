import {
  applyNodeChanges,
  Background,
  BaseEdge,
  Controls,
  EdgeLabelRenderer,
  Handle,
  MarkerType,
  Position as Side,
  ReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type EdgeProps,
  type Node,
  type NodeChange,
  type NodeProps,
  type OnBeforeDelete,
  useNodes,
  useNodesInitialized,
  useReactFlow,
  useStoreApi,
  useUpdateNodeInternals,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { useEffect, useMemo, useRef, useState } from 'react';
import { parallelLabelAt, routeEdge, routePath, type Rect } from '../lib/edgeRoute';
import type { TransitionEdge, WorkflowGraph } from '../lib/graph';
import { firstViewport, keepMeasured, NODE_HEIGHT, NODE_WIDTH } from '../lib/layout';
import type { Position, StateKind } from '../lib/model';

export type Selection = { kind: 'state'; name: string } | { kind: 'transition'; name: string; from?: string } | null;

interface StateData extends Record<string, unknown> {
  name: string;
  label: string;
  kind: StateKind;
  problem: boolean;
}

interface EdgeData extends Record<string, unknown> {
  edge: TransitionEdge;
  problem: boolean;
  /** Selects the transition (its label is clickable as well as its line). */
  select: () => void;
}

type StateFlowNode = Node<StateData, 'state'>;
type TransitionFlowEdge = Edge<EdgeData, 'transition'>;

const KIND_TEXT: Record<StateKind, string> = { initial: 'initial', active: '', terminal: 'terminal' };

function StateNodeView({ data, selected }: NodeProps<StateFlowNode>) {
  return (
    <div className={`state-node kind-${data.kind}${selected ? ' selected' : ''}${data.problem ? ' has-problem' : ''}`}>
      <Handle type="target" position={Side.Left} />
      <div className="state-label">{data.label}</div>
      <div className="state-meta">
        {/* The name only when the label does not already say it (Pending approval = PENDING_APPROVAL). */}
        {data.label.toUpperCase().replace(/[^A-Z0-9]+/g, '_') !== data.name ? <span>{data.name}</span> : null}
        {KIND_TEXT[data.kind] ? <span className="kind">{KIND_TEXT[data.kind]}</span> : null}
        {data.problem ? <span className="problem-dot">problem</span> : null}
      </div>
      <Handle type="source" position={Side.Right} />
    </div>
  );
}

/** Where a state is drawn on the canvas. */
function rectOf(n: StateFlowNode): Rect {
  return {
    x: n.position.x,
    y: n.position.y,
    width: n.measured?.width ?? n.width ?? NODE_WIDTH,
    height: n.measured?.height ?? n.height ?? NODE_HEIGHT,
  };
}

/**
 * A transition: a curve between the sides of its states that face each other, bent apart from
 * its parallels and round the states in its way (`routeEdge`), or a loop above its state.
 */
function TransitionEdgeView({ source, target, sourceX, sourceY, targetX, targetY, data, selected, markerEnd }: EdgeProps<TransitionFlowEdge>) {
  const nodes = useNodes<StateFlowNode>();
  if (!data) return null;
  const { edge, problem, select } = data;
  let path: string;
  let labelX: number;
  let labelY: number;
  const [from, to] = [nodes.find((n) => n.id === source), nodes.find((n) => n.id === target)];
  if (edge.selfLoop || !from || !to) {
    // From the right handle round the top of the node to the left handle.
    const lift = 50 + edge.parallel.index * 22;
    const top = sourceY - NODE_HEIGHT / 2 - lift;
    path = `M ${String(sourceX)} ${String(sourceY)} C ${String(sourceX + 60)} ${String(top)}, ${String(targetX - 60)} ${String(top)}, ${String(targetX)} ${String(targetY)}`;
    labelX = (sourceX + targetX) / 2;
    labelY = top + lift * 0.25;
  } else {
    const { index, count } = edge.parallel;
    // Edges of one pair of states bend apart; the sign is taken from the pair's canonical
    // direction so that A→B and B→A do not bend onto each other.
    const canonical: 1 | -1 = edge.source < edge.target ? 1 : -1;
    const bend = (index - (count - 1) / 2) * 46 * canonical;
    // Their labels also move apart along the curves (putOnHold and resume sat on each other
    // where both curves bent the same way round a state).
    const labelAt = parallelLabelAt(index, count, canonical);
    const others = nodes.filter((n) => n.id !== source && n.id !== target).map(rectOf);
    const route = routeEdge(rectOf(from), rectOf(to), others, bend, labelAt);
    path = routePath(route);
    labelX = route.label.x;
    labelY = route.label.y;
  }
  return (
    <>
      <BaseEdge path={path} markerEnd={markerEnd} className={selected ? 'edge-selected' : problem ? 'edge-problem' : ''} />
      <EdgeLabelRenderer>
        {/* The line's group is the keyboard's way in (Tab, Enter); the label is the mouse's. */}
        {/* eslint-disable-next-line jsx-a11y/click-events-have-key-events, jsx-a11y/no-static-element-interactions */}
        <div
          className={`edge-label nopan${selected ? ' selected' : ''}${problem ? ' has-problem' : ''}`}
          style={{ transform: `translate(-50%, -50%) translate(${String(labelX)}px, ${String(labelY)}px)` }}
          onClick={select}
        >
          {edge.label}
        </div>
      </EdgeLabelRenderer>
    </>
  );
}

const nodeTypes = { state: StateNodeView };
const edgeTypes = { transition: TransitionEdgeView };

export interface CanvasProps {
  graph: WorkflowGraph;
  positions: Record<string, Position>;
  selection: Selection;
  problemStates: Set<string>;
  problemTransitions: Set<string>;
  onSelect: (s: Selection) => void;
  onMoved: (positions: Record<string, Position>) => void;
  onConnect: (from: string, to: string) => void;
  /** Asked before Delete removes what is selected: the designer confirms and does it itself. */
  onDelete: (s: Selection) => void;
}

/** The state machine as a graph: states to drag and connect, transitions to select. */
/**
 * Places the first view once the states are measured: the whole workflow when it fits at a
 * readable zoom, else from its start at that zoom (`lib/layout.ts` firstViewport). Fitting a long
 * workflow whole drew it at ~0.45, its labels unreadable.
 */
function FirstView() {
  const initialized = useNodesInitialized();
  const flow = useReactFlow();
  const store = useStoreApi();
  const done = useRef(false);
  useEffect(() => {
    if (!initialized || done.current) return;
    done.current = true;
    const { width, height } = store.getState();
    void flow.setViewport(firstViewport(flow.getNodesBounds(flow.getNodes()), { width, height }));
  }, [initialized, flow, store]);
  return null;
}

/**
 * Measures the states' handles again whenever the nodes are given anew. A node object replaced
 * while React Flow was measuring it (the validation's answer re-derives every node, sometimes
 * just then) lost its handles' positions for good: the size had not changed, so nothing measured
 * it again, and no edge was drawn (a failure screenshot of the e2e tests, 1 load in 15 once the
 * workflow's positions came from the package).
 */
function Remeasure({ nodes }: { nodes: StateFlowNode[] }) {
  const update = useUpdateNodeInternals();
  useEffect(() => {
    update(nodes.map((n) => n.id));
  }, [nodes, update]);
  return null;
}

export function WorkflowCanvas(props: CanvasProps) {
  const { graph, positions, selection, problemStates, problemTransitions, onSelect } = props;
  const derived = useMemo<StateFlowNode[]>(
    () =>
      graph.nodes.map((n) => ({
        id: n.id,
        type: 'state',
        position: positions[n.id] ?? { x: 0, y: 0 },
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        selected: selection?.kind === 'state' && selection.name === n.id,
        ariaLabel: `State ${n.id}${n.kind === 'active' ? '' : ` (${n.kind})`}`,
        data: { name: n.id, label: n.label, kind: n.kind, problem: problemStates.has(n.id) },
      })),
    [graph, positions, selection, problemStates],
  );
  // Local nodes follow the pointer during a drag; the package records where they end.
  const [nodes, setNodes] = useState(derived);
  const [from, setFrom] = useState(derived);
  if (from !== derived) {
    setFrom(derived);
    // Each node keeps the size React Flow measured, so that giving the nodes anew does not make
    // them unmeasured (and their edges undrawn) until `Remeasure` has measured them again.
    setNodes(keepMeasured(derived, nodes));
  }

  const edges = useMemo<TransitionFlowEdge[]>(
    () =>
      graph.edges.map((e) => ({
        id: e.id,
        type: 'transition',
        source: e.source,
        target: e.target,
        selected: selection?.kind === 'transition' && selection.name === e.transition,
        markerEnd: { type: MarkerType.ArrowClosed, width: 18, height: 18 },
        ariaLabel: `Transition ${e.transition} from ${e.source} to ${e.target}`,
        data: {
          edge: e,
          problem: problemTransitions.has(e.transition),
          select: () => {
            onSelect({ kind: 'transition', name: e.transition, from: e.source });
          },
        },
      })),
    [graph, selection, problemTransitions, onSelect],
  );

  const onNodesChange = (changes: NodeChange<StateFlowNode>[]) => {
    // Enter on a focused state selects it (the canvas's keyboard selection).
    const picked = changes.find((c) => c.type === 'select' && c.selected);
    if (picked?.type === 'select') onSelect({ kind: 'state', name: picked.id });
    setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type === 'position' || c.type === 'dimensions'), ns));
  };
  const onEdgesChange = (changes: EdgeChange<TransitionFlowEdge>[]) => {
    const picked = changes.find((c) => c.type === 'select' && c.selected);
    const edge = picked?.type === 'select' ? graph.edges.find((e) => e.id === picked.id) : undefined;
    if (edge) onSelect({ kind: 'transition', name: edge.transition, from: edge.source });
  };

  const onBeforeDelete: OnBeforeDelete<StateFlowNode, TransitionFlowEdge> = ({ nodes: ns, edges: es }) => {
    const node = ns[0];
    const edge = es[0];
    if (node) props.onDelete({ kind: 'state', name: node.id });
    else if (edge?.data) props.onDelete({ kind: 'transition', name: edge.data.edge.transition, from: edge.source });
    return Promise.resolve(false);
  };

  return (
    <div className="canvas" aria-label="Workflow diagram" role="region">
      <ReactFlow<StateFlowNode, TransitionFlowEdge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onNodeClick={(_, n) => {
          props.onSelect({ kind: 'state', name: n.id });
        }}
        onEdgeClick={(_, e) => {
          if (e.data) props.onSelect({ kind: 'transition', name: e.data.edge.transition, from: e.source });
        }}
        onPaneClick={() => {
          props.onSelect(null);
        }}
        onNodeDragStop={(_, __, dragged) => {
          const moved: Record<string, Position> = {};
          for (const n of dragged) moved[n.id] = n.position;
          props.onMoved(moved);
        }}
        onConnect={(c: Connection) => {
          props.onConnect(c.source, c.target);
        }}
        onBeforeDelete={onBeforeDelete}
        // The Controls' "fit view" shows it all; the first view is readable (`FirstView`).
        fitViewOptions={{ padding: 0.04 }}
        minZoom={0.2}
        proOptions={{ hideAttribution: true }}
      >
        <FirstView />
        <Remeasure nodes={derived} />
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
