import { useEffect, useId, useMemo, useRef, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useDraft } from '../hooks/draftContext';
import {
  addState,
  addTransition,
  copyStates,
  deleteState,
  deleteTransitionEdge,
  pasteStates,
  setPositions,
  stateReferences,
  suggestTransitionName,
  transitionReferences,
  type Clipboard,
} from '../lib/edits';
import { toGraph } from '../lib/graph';
import { clearOfOthers, elkLayout, keepShown, keptPlaces, looseStates, positionsFor } from '../lib/layout';
import { findType, type Position } from '../lib/model';
import { problemsAt, type Target } from '../lib/problems';
import { ConfirmDialog } from './ConfirmDialog';
import { ProblemsPanel } from './ProblemsPanel';
import { SaveStatus } from './SaveStatus';
import { StatePanel } from './StatePanel';
import { TransitionPanel } from './TransitionPanel';
import { WorkflowCanvas, type Selection } from './WorkflowCanvas';

/** The workflow designer: the state machine of one type of the draft, as a graph to edit. */
export function WorkflowPage() {
  const { tenant = '', type: typeName = '' } = useParams();
  const draft = useDraft();
  const navigate = useNavigate();
  const id = useId();
  useDocumentTitle(`Workflow of ${typeName}`, tenant);
  const type = findType(draft.pkg, typeName);
  const workflow = type?.workflow;
  const graph = useMemo(() => (workflow ? toGraph(workflow) : null), [workflow]);
  const [selection, setSelection] = useState<Selection>(null);
  const [computed, setComputed] = useState<Record<string, Position>>({});
  const [newState, setNewState] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<Selection>(null);
  const [clipboard, setClipboard] = useState<Clipboard | null>(null);

  // Where unplaced states go (never moving a placed one): computed for the view only; the
  // draft records positions once an admin moves something.
  // States already shown stay where they are when the workflow changes (a state added, a
  // transition drawn): only new ones are placed.
  // (Another type's workflow starts afresh: its states may have the same names.) A state
  // placed while it had no transition is placed again once it has one, beside its neighbour.
  const shownRef = useRef<{ type: string; at: Record<string, Position>; loose: string[] }>({
    type: typeName,
    at: {},
    loose: [],
  });
  useEffect(() => {
    if (!graph) return;
    let live = true;
    const previous = shownRef.current.type === typeName ? shownRef.current : { at: {}, loose: [] };
    const shown = keptPlaces(graph, previous.at, previous.loose);
    void positionsFor(keepShown(graph, shown)).then((p) => {
      if (!live) return;
      const next = { ...shown, ...p };
      shownRef.current = { type: typeName, at: next, loose: looseStates(graph, Object.keys(next)) };
      setComputed(next);
    });
    return () => {
      live = false;
    };
  }, [graph, typeName]);

  const positions = useMemo(() => {
    const out: Record<string, Position> = { ...computed };
    for (const n of graph?.nodes ?? []) if (n.position) out[n.id] = n.position;
    return out;
  }, [graph, computed]);
  const marks = useMemo(() => problemsAt(draft.problems, typeName), [draft.problems, typeName]);
  // The canvas appears once every state has a place (it fits the view to them then); a state
  // added later gets its place a moment after, on the canvas already shown.
  const [shown, setShown] = useState(false);
  if (!shown && graph && graph.nodes.every((n) => n.id in positions)) setShown(true);

  const copy = () => {
    if (workflow && selection?.kind === 'state') setClipboard(copyStates(workflow, [selection.name]));
  };
  const paste = () => {
    if (!clipboard) return;
    const { result, names } = pasteStates(draft.pkg, typeName, clipboard);
    if (result.ok) {
      draft.edit(result.pkg);
      const first = names[0];
      if (first) setSelection({ kind: 'state', name: first });
    }
  };
  // Ctrl/Cmd+C and +V copy and paste the selected state, except while typing.
  const keys = useRef({ copy, paste });
  useEffect(() => {
    keys.current = { copy, paste };
  });
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (!(e.ctrlKey || e.metaKey) || target?.closest('input, textarea, select, [contenteditable="true"]')) return;
      if (e.key === 'c') keys.current.copy();
      else if (e.key === 'v') keys.current.paste();
    };
    window.addEventListener('keydown', onKey);
    return () => {
      window.removeEventListener('keydown', onKey);
    };
  }, []);

  if (!type) {
    return (
      <>
        <p>
          <Link to={paths.design(tenant)}>← Types</Link>
        </p>
        <Alert>The draft has no type “{typeName}”.</Alert>
      </>
    );
  }
  if (!workflow || !graph) {
    return (
      <>
        <p>
          <Link to={paths.design(tenant)}>← Types</Link>
        </p>
        <h1>{type.label ?? type.name}</h1>
        <p>This type has no workflow: its entities stay in one state, ACTIVE.</p>
      </>
    );
  }

  const unplaced = graph.nodes.some((n) => !n.position);
  // The first move in a workflow never laid out records every state where it is seen.
  const place = (moved: Record<string, Position>, coalesce?: string) => {
    const all = unplaced ? { ...positions, ...moved } : moved;
    const r = setPositions(draft.pkg, typeName, all);
    if (r.ok) draft.edit(r.pkg, coalesce);
  };
  const add = () => {
    const r = addState(draft.pkg, typeName, newState);
    if (!r.ok) {
      setError(r.error);
      return;
    }
    setError(null);
    draft.edit(r.pkg);
    setSelection({ kind: 'state', name: newState });
    setNewState('');
  };
  const connect = (from: string, to: string) => {
    const name = suggestTransitionName(workflow, to);
    const r = addTransition(draft.pkg, typeName, name, from, to);
    if (r.ok) {
      draft.edit(r.pkg);
      setSelection({ kind: 'transition', name, from });
    } else setError(r.error);
  };
  const goTo = (t: Target) => {
    if (t.kind === 'state' || t.kind === 'transition') {
      if (t.type !== typeName) void navigate(paths.workflow(tenant, t.type));
      setSelection(t.kind === 'state' ? { kind: 'state', name: t.state } : { kind: 'transition', name: t.transition });
    } else if (t.kind === 'field' || t.kind === 'type') {
      void navigate(paths.designType(tenant, t.type));
    }
  };

  return (
    <div className="designer">
      <div className="designer-head">
        <p>
          <Link to={paths.design(tenant)}>← Types</Link>
        </p>
        <h1>Workflow of {type.label ?? type.name}</h1>
        <SaveStatus />
      </div>
      <div className="toolbar" role="toolbar" aria-label="Designer">
        <label htmlFor={`${id}-new`}>New state</label>
        <input
          id={`${id}-new`}
          value={newState}
          placeholder="ON_HOLD"
          onChange={(e) => {
            setNewState(e.target.value);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter') add();
          }}
        />
        <button type="button" onClick={add}>
          Add state
        </button>
        <button type="button" className="secondary" onClick={draft.undo} disabled={!draft.canUndo}>
          Undo
        </button>
        <button type="button" className="secondary" onClick={draft.redo} disabled={!draft.canRedo}>
          Redo
        </button>
        <button type="button" className="secondary" onClick={copy} disabled={selection?.kind !== 'state'}>
          Copy state
        </button>
        <button type="button" className="secondary" onClick={paste} disabled={!clipboard}>
          Paste
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            void elkLayout(graph).then((all) => {
              const r = setPositions(draft.pkg, typeName, all);
              if (r.ok) draft.edit(r.pkg);
            });
          }}
        >
          Lay out again
        </button>
        <span className="muted">
          {graph.nodes.length} states, {Object.keys(workflow.transitions ?? {}).length} transitions
        </span>
      </div>
      {error ? <Alert>{error}</Alert> : null}
      <div className="designer-body">
        {shown ? (
        <WorkflowCanvas
          graph={graph}
          positions={positions}
          selection={selection}
          problemStates={marks.states}
          problemTransitions={marks.transitions}
          onSelect={setSelection}
          onMoved={(moved) => {
            // A state dropped on another goes to the nearest free place beside it.
            place(clearOfOthers(moved, positions));
          }}
          onConnect={connect}
          onDelete={setDeleting}
        />
        ) : (
          <div className="canvas" role="region" aria-label="Workflow diagram">
            <p className="muted">Laying out the states…</p>
          </div>
        )}
        <aside className="side" aria-label="Selection">
          {selection?.kind === 'state' && (
            <StatePanel key={selection.name} type={typeName} workflow={workflow} name={selection.name} onSelect={setSelection} />
          )}
          {selection?.kind === 'transition' && (
            <TransitionPanel
              key={selection.name}
              type={type}
              workflow={workflow}
              name={selection.name}
              from={selection.from}
              onSelect={setSelection}
            />
          )}
          {selection === null && (
            <p className="muted">
              Select a state or a transition to edit it (Tab moves between them, Enter selects, Delete deletes). Drag
              from a state’s right edge to another state to add a transition.
            </p>
          )}
        </aside>
      </div>
      <ProblemsPanel onGo={goTo} />
      {deleting && (
        <ConfirmDialog
          title={deleting.kind === 'state' ? `Delete state ${deleting.name}?` : `Delete transition ${deleting.name}?`}
          consequences={
            deleting.kind === 'state' ? stateReferences(workflow, deleting.name) : transitionReferences(workflow, deleting.name)
          }
          confirm="Delete"
          onCancel={() => {
            setDeleting(null);
          }}
          onConfirm={() => {
            const r =
              deleting.kind === 'state'
                ? deleteState(draft.pkg, typeName, deleting.name)
                : deleteTransitionEdge(draft.pkg, typeName, deleting.name, deleting.from ?? workflow.transitions?.[deleting.name]?.from?.[0] ?? '');
            setDeleting(null);
            if (r.ok) {
              draft.edit(r.pkg);
              setSelection(null);
            }
          }}
        />
      )}
    </div>
  );
}
