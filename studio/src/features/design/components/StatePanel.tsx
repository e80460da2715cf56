import { useId, useState } from 'react';
import { useDraft } from '../hooks/draftContext';
import {
  addTransition,
  deleteState,
  renameState,
  stateReferences,
  suggestTransitionName,
  updateState,
} from '../lib/edits';
import type { StateKind, WorkflowJson } from '../lib/model';
import type { Selection } from './WorkflowCanvas';
import { ConfirmDialog } from './ConfirmDialog';
import { NameField } from './NameField';

interface Props {
  type: string;
  workflow: WorkflowJson;
  name: string;
  onSelect: (s: Selection) => void;
}

/** The selected state: its name, label and kind, a transition out of it, deleting it. */
export function StatePanel({ type, workflow, name, onSelect }: Props) {
  const draft = useDraft();
  const id = useId();
  const state = workflow.states[name];
  const others = Object.keys(workflow.states);
  const [target, setTarget] = useState(others.find((s) => s !== name) ?? name);
  const [newName, setNewName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  if (!state) return null;

  const rename = (to: string) => {
    const r = renameState(draft.pkg, type, name, to);
    if (!r.ok) return r.error;
    draft.edit(r.pkg);
    onSelect({ kind: 'state', name: to });
    return null;
  };
  const transitionName = newName || suggestTransitionName(workflow, target);
  const add = () => {
    const r = addTransition(draft.pkg, type, transitionName, name, target);
    if (!r.ok) {
      setError(r.error);
      return;
    }
    draft.edit(r.pkg);
    setNewName('');
    setError(null);
    onSelect({ kind: 'transition', name: transitionName, from: name });
  };

  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>State {name}</h2>
      <NameField value={name} onRename={rename} />
      <div className="field">
        <label htmlFor={`${id}-label`}>Label</label>
        <input
          id={`${id}-label`}
          value={state.label ?? ''}
          onChange={(e) => {
            const r = updateState(draft.pkg, type, name, { label: e.target.value || undefined });
            if (r.ok) draft.edit(r.pkg, `state-label:${name}`);
          }}
        />
      </div>
      <div className="field">
        <label htmlFor={`${id}-kind`}>Kind</label>
        <select
          id={`${id}-kind`}
          value={state.kind ?? 'active'}
          onChange={(e) => {
            const r = updateState(draft.pkg, type, name, { kind: e.target.value as StateKind });
            if (r.ok) draft.edit(r.pkg);
          }}
        >
          <option value="initial">Initial (where new entities start)</option>
          <option value="active">Active</option>
          <option value="terminal">Terminal (no way out expected)</option>
        </select>
      </div>

      <fieldset>
        <legend>Add a transition from {name}</legend>
        <div className="field">
          <label htmlFor={`${id}-to`}>To state</label>
          <select
            id={`${id}-to`}
            value={target}
            onChange={(e) => {
              setTarget(e.target.value);
            }}
          >
            {others.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-tname`}>Transition name</label>
          <input
            id={`${id}-tname`}
            value={newName}
            placeholder={suggestTransitionName(workflow, target)}
            onChange={(e) => {
              setNewName(e.target.value);
            }}
          />
        </div>
        {error ? <p className="field-error">{error}</p> : null}
        <button type="button" onClick={add}>
          Add transition
        </button>
      </fieldset>

      <button
        type="button"
        className="danger"
        onClick={() => {
          setConfirming(true);
        }}
      >
        Delete state
      </button>
      {confirming && (
        <ConfirmDialog
          title={`Delete state ${name}?`}
          consequences={stateReferences(workflow, name).map((r) => `${r}: it will be removed or no longer start here`)}
          confirm="Delete state"
          onCancel={() => {
            setConfirming(false);
          }}
          onConfirm={() => {
            const r = deleteState(draft.pkg, type, name);
            setConfirming(false);
            if (r.ok) {
              draft.edit(r.pkg);
              onSelect(null);
            }
          }}
        />
      )}
    </section>
  );
}
