import { lazy, Suspense, useId, useMemo, useState } from 'react';
import { useDraft } from '../hooks/draftContext';
import { deleteTransitionEdge, renameTransition, transitionReferences, updateTransition } from '../lib/edits';
import { comparison, defaultMessage, guardVariables, OPERATORS, type Operator } from '../lib/guards';
import { roleNames, type GuardJson, type TransitionJson, type TypeJson, type WorkflowJson } from '../lib/model';
import { ConfirmDialog } from './ConfirmDialog';
import { NameField } from './NameField';
import { GuardPlayground } from './GuardPlayground';
import { JsonField } from './JsonField';
import { TryPanel } from './TryPanel';
import { scriptMarks } from '../lib/problems';

const ScriptEditor = lazy(() => import('./ScriptEditor'));
// The guard's rules view (react-querybuilder, its JSON-Logic parser and formatter) is a chunk of
// its own, loaded when a transition with guards is opened; meanwhile the rule shows as JSON.
const GuardRule = lazy(() => import('./GuardRule'));
import type { Selection } from './WorkflowCanvas';

interface Props {
  type: TypeJson;
  workflow: WorkflowJson;
  name: string;
  from?: string;
  onSelect: (s: Selection) => void;
}

/** Builds a comparison guard: a value of the context, an operator, a value, a message. */
function GuardBuilder({ type, onAdd }: { type: TypeJson; onAdd: (g: GuardJson) => void }) {
  const id = useId();
  const variables = guardVariables(type);
  const [variable, setVariable] = useState(variables[0] ?? 'entity.state');
  const [op, setOp] = useState<Operator>('>');
  const [value, setValue] = useState('');
  const [message, setMessage] = useState('');
  return (
    <fieldset className="builder">
      <legend>New guard</legend>
      <div className="row wrap">
        <div className="field">
          <label htmlFor={`${id}-var`}>Value</label>
          <select
            id={`${id}-var`}
            value={variable}
            onChange={(e) => {
              setVariable(e.target.value);
            }}
          >
            {variables.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-op`}>Operator</label>
          <select
            id={`${id}-op`}
            value={op}
            onChange={(e) => {
              setOp(e.target.value as Operator);
            }}
          >
            {OPERATORS.map(([o, words]) => (
              <option key={o} value={o}>
                {words}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-value`}>Compared with</label>
          <input
            id={`${id}-value`}
            value={value}
            onChange={(e) => {
              setValue(e.target.value);
            }}
          />
        </div>
      </div>
      <div className="field">
        <label htmlFor={`${id}-msg`}>Message when it fails</label>
        <input
          id={`${id}-msg`}
          value={message}
          placeholder={defaultMessage(variable, op, value)}
          onChange={(e) => {
            setMessage(e.target.value);
          }}
        />
      </div>
      <button
        type="button"
        onClick={() => {
          onAdd({ rule: comparison(variable, op, value), message: message || defaultMessage(variable, op, value) });
          setValue('');
          setMessage('');
        }}
      >
        Add guard
      </button>
    </fieldset>
  );
}

/** The selected transition: name, label, where from and to, who, its guards and script. */
export function TransitionPanel({ type, workflow, name, from, onSelect }: Props) {
  const draft = useDraft();
  const id = useId();
  const [confirming, setConfirming] = useState(false);
  const t = workflow.transitions?.[name];
  const script = t?.script ?? '';
  const marks = useMemo(() => scriptMarks(draft.problems, type.name, name, script), [draft.problems, type.name, name, script]);
  if (!t) return null;
  const states = Object.keys(workflow.states);
  const roles = roleNames(draft.pkg);
  const guards = t.guards ?? [];

  const patch = (p: Partial<TransitionJson>, coalesce?: string) => {
    const r = updateTransition(draft.pkg, type.name, name, p);
    if (r.ok) draft.edit(r.pkg, coalesce);
  };
  const rename = (to: string) => {
    const r = renameTransition(draft.pkg, type.name, name, to);
    if (!r.ok) return r.error;
    draft.edit(r.pkg);
    onSelect({ kind: 'transition', name: to, from });
    return null;
  };
  const setGuards = (next: GuardJson[], coalesce?: string) => {
    patch({ guards: next.length > 0 ? next : undefined }, coalesce);
  };
  const edgeFrom = from ?? t.from?.[0] ?? '';

  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Transition {name}</h2>
      <NameField value={name} onRename={rename} />
      <div className="field">
        <label htmlFor={`${id}-label`}>Label</label>
        <input
          id={`${id}-label`}
          value={t.label ?? ''}
          onChange={(e) => {
            patch({ label: e.target.value || undefined }, `tr-label:${name}`);
          }}
        />
      </div>
      <fieldset>
        <legend>From states</legend>
        {states.map((s) => (
          <label key={s} className="check">
            <input
              type="checkbox"
              checked={(t.from ?? []).includes(s)}
              onChange={(e) => {
                const next = e.target.checked ? [...(t.from ?? []), s] : (t.from ?? []).filter((x) => x !== s);
                if (next.length > 0) patch({ from: next });
              }}
            />
            {s}
          </label>
        ))}
      </fieldset>
      <div className="field">
        <label htmlFor={`${id}-to`}>To state</label>
        <select
          id={`${id}-to`}
          value={t.to}
          onChange={(e) => {
            patch({ to: e.target.value });
          }}
        >
          {states.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <fieldset>
        <legend>Roles that may fire it</legend>
        {roles.map((r) => (
          <label key={r} className="check">
            <input
              type="checkbox"
              checked={(t.roles ?? []).includes(r)}
              onChange={(e) => {
                const current = t.roles ?? [];
                patch({ roles: e.target.checked ? [...current, r] : current.filter((x) => x !== r) });
              }}
            />
            {r}
          </label>
        ))}
      </fieldset>

      <fieldset>
        <legend>Four-eyes: who may not fire it</legend>
        <label className="check">
          <input
            type="checkbox"
            checked={(t.four_eyes ?? []).includes('creator')}
            onChange={(e) => {
              const rest = (t.four_eyes ?? []).filter((x) => x !== 'creator');
              const next = e.target.checked ? ['creator', ...rest] : rest;
              patch({ four_eyes: next.length > 0 ? next : undefined });
            }}
          />
          the entity’s creator
        </label>
        {Object.keys(workflow.transitions ?? {})
          .filter((other) => other !== name)
          .map((other) => (
            <label key={other} className="check">
              <input
                type="checkbox"
                checked={(t.four_eyes ?? []).includes(other)}
                onChange={(e) => {
                  const current = t.four_eyes ?? [];
                  const next = e.target.checked ? [...current, other] : current.filter((x) => x !== other);
                  patch({ four_eyes: next.length > 0 ? next : undefined });
                }}
              />
              who fired {other}
            </label>
          ))}
      </fieldset>
      <div className="field">
        <label htmlFor={`${id}-events`}>Events (comma-separated)</label>
        <input
          id={`${id}-events`}
          value={(t.events ?? []).join(', ')}
          onChange={(e) => {
            const events = e.target.value
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean);
            patch({ events: events.length > 0 ? events : undefined }, `events:${name}`);
          }}
        />
      </div>
      <JsonField
        label="Input schema (JSON Schema)"
        value={t.input}
        optional
        onChange={(input) => {
          patch({ input }, `input:${name}`);
        }}
      />
      <JsonField
        label="Loads (JSON)"
        value={t.load}
        optional
        rows={4}
        onChange={(load) => {
          patch({ load: load as TransitionJson['load'] }, `load:${name}`);
        }}
      />

      <h3>Guards</h3>
      {guards.length === 0 ? <p className="muted">No guard: anyone with a role above may fire it.</p> : null}
      <ol className="guards">
        {guards.map((g, i) => {
          const n = String(i + 1);
          return (
            <li key={n}>
              <div className="field">
                <label htmlFor={`${id}-gm-${n}`}>Guard {n} message</label>
                <input
                  id={`${id}-gm-${n}`}
                  value={g.message}
                  onChange={(e) => {
                    setGuards(
                      guards.map((x, j) => (j === i ? { ...x, message: e.target.value } : x)),
                      `guard-msg:${name}:${n}`,
                    );
                  }}
                />
              </div>
              <Suspense
                fallback={
                  <JsonField
                    label={`Guard ${n} rule (JSON-Logic)`}
                    value={g.rule}
                    rows={2}
                    onChange={(rule) => {
                      setGuards(
                        guards.map((x, j) => (j === i ? { ...x, rule } : x)),
                        `guard-rule:${name}:${n}`,
                      );
                    }}
                  />
                }
              >
                <GuardRule
                  n={n}
                  rule={g.rule}
                  pkg={draft.pkg}
                  type={type}
                  transition={t}
                  onChange={(rule) => {
                    setGuards(
                      guards.map((x, j) => (j === i ? { ...x, rule } : x)),
                      `guard-rule:${name}:${n}`,
                    );
                  }}
                />
              </Suspense>
              <GuardPlayground type={type.name} rule={g.rule} label={`Evaluate guard ${n}`} />
              <button
                type="button"
                className="secondary"
                onClick={() => {
                  setGuards(guards.filter((_, j) => j !== i));
                }}
              >
                Remove guard {n}
              </button>
            </li>
          );
        })}
      </ol>
      <GuardBuilder
        type={type}
        onAdd={(g) => {
          setGuards([...guards, g]);
        }}
      />

      <div className="field">
        <span className="label" id={`${id}-script`}>
          Script (Rhai)
        </span>
        <Suspense fallback={<p className="muted">Loading the editor…</p>}>
          <ScriptEditor
            label="Script (Rhai)"
            value={t.script ?? ''}
            marks={marks}
            onChange={(text) => {
              patch({ script: text || undefined }, `script:${name}`);
            }}
          />
        </Suspense>
        {marks.length > 0 ? (
          <ul className="script-problems" aria-label="Script problems">
            {marks.map((m) => (
              <li key={`${String(m.from)}:${m.message}`}>{m.message}</li>
            ))}
          </ul>
        ) : null}
      </div>

      <TryPanel type={type.name} transition={name} />

      <button
        type="button"
        className="danger"
        onClick={() => {
          setConfirming(true);
        }}
      >
        {(t.from?.length ?? 0) > 1 ? `Delete transition from ${edgeFrom}` : 'Delete transition'}
      </button>
      {confirming && (
        <ConfirmDialog
          title={(t.from?.length ?? 0) > 1 ? `Delete ${name} from ${edgeFrom}?` : `Delete transition ${name}?`}
          consequences={(t.from?.length ?? 0) > 1 ? [] : transitionReferences(workflow, name).map((r) => `${r}: it will be removed`)}
          confirm="Delete transition"
          onCancel={() => {
            setConfirming(false);
          }}
          onConfirm={() => {
            const r = deleteTransitionEdge(draft.pkg, type.name, name, edgeFrom);
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
