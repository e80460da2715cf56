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
import { findType, roleNames, type StateJson, type StateKind, type WorkflowJson } from '../lib/model';
import type { Selection } from './WorkflowCanvas';
import { ConfirmDialog } from './ConfirmDialog';
import { JsonField } from './JsonField';
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
  const fields = Object.keys(findType(draft.pkg, type)?.fields ?? {});
  const roles = roleNames(draft.pkg);
  const setEditable = (f: string[], r: string[]) => {
    const editable = f.length === 0 && r.length === 0 ? undefined : { fields: f, roles: r };
    const result = updateState(draft.pkg, type, name, { editable });
    if (result.ok) draft.edit(result.pkg);
  };

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
        <legend>Editable in this state (fields)</legend>
        {fields.map((f) => (
          <label key={f} className="check">
            <input
              type="checkbox"
              checked={(state.editable?.fields ?? []).includes(f)}
              onChange={(e) => {
                const current = state.editable?.fields ?? [];
                const next = e.target.checked ? [...current, f] : current.filter((x) => x !== f);
                setEditable(next, state.editable?.roles ?? []);
              }}
            />
            {f}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>Editable in this state (roles)</legend>
        {roles.map((r) => (
          <label key={r} className="check">
            <input
              type="checkbox"
              checked={(state.editable?.roles ?? []).includes(r)}
              onChange={(e) => {
                const current = state.editable?.roles ?? [];
                const next = e.target.checked ? [...current, r] : current.filter((x) => x !== r);
                setEditable(state.editable?.fields ?? [], next);
              }}
            />
            {r}
          </label>
        ))}
      </fieldset>
      <JsonField
        label="Timers (JSON: [{after, transition, input}])"
        value={state.timers}
        optional
        onChange={(timers) => {
          const r = updateState(draft.pkg, type, name, { timers: timers as StateJson['timers'] });
          if (r.ok) draft.edit(r.pkg, `timers:${name}`);
        }}
      />

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
