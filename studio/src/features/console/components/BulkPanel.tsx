import { useId, useRef, useState } from 'react';
import { Alert } from '../../../components/Alert';
import { errorMessage } from '../../../lib/envelope';
import type { WorkflowLabels } from '../../../lib/workflowLabels';
import { bulkTransition, type BulkTarget } from '../api/bulk';
import { bulkTransitions, failureGroups, type BulkProgress } from '../lib/bulk';
import { createSchema, uiSchemaFor } from '../lib/forms';
import { RefLink } from './DataValue';
import { SchemaForm } from './SchemaForm';

export interface WorkflowTransition {
  name: string;
  label?: string | null;
  from?: string[];
  create?: boolean;
  roles?: string[];
  input_schema?: unknown;
}

interface Props {
  tenant: string;
  type: string;
  transitions: WorkflowTransition[];
  /** The type's state and transition labels. */
  labels: WorkflowLabels;
  roles: string[];
  target: BulkTarget;
  /** How many entities the target holds (the selection, or the filter's total). */
  count: number;
  /** What the target is, in words ("3 selected", "all 120 matching"). */
  what: string;
  /** After a real run: the list and the inbox are read again. */
  onDone: () => void;
}

type Run = { dryRun: boolean; progress: BulkProgress; error: string | null; running: boolean };

/**
 * A transition on the chosen entities: a dry run first (each evaluated and rolled back, the
 * report listing who would fail and why), then the real run, its progress following the
 * streamed report.
 */
export function BulkPanel(props: Props) {
  const id = useId();
  const choices = bulkTransitions(props.transitions, props.roles);
  const [name, setName] = useState('');
  const [input, setInput] = useState<Record<string, unknown>>({});
  const [run, setRun] = useState<Run | null>(null);
  const abort = useRef<AbortController | null>(null);
  const chosen = choices.find((t) => t.name === name);
  const label = chosen ? (chosen.label ?? props.labels.transition(chosen.name)) : '';
  const targetKey = JSON.stringify(props.target);
  const [ranFor, setRanFor] = useState('');
  // A new selection or transition needs a new dry run.
  if (run && !run.running && ranFor !== `${targetKey}|${name}`) setRun(null);

  const go = async (dryRun: boolean) => {
    if (!chosen) return;
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setRanFor(`${targetKey}|${name}`);
    setRun({ dryRun, progress: { results: [], done: null }, error: null, running: true });
    try {
      const progress = await bulkTransition(
        props.tenant,
        props.type,
        chosen.name,
        props.target,
        input,
        dryRun,
        (p) => {
          setRun({ dryRun, progress: p, error: null, running: true });
        },
        controller.signal,
      );
      setRun({ dryRun, progress, error: null, running: false });
    } catch (e) {
      setRun((r) => ({ dryRun, progress: r?.progress ?? { results: [], done: null }, error: errorMessage(e), running: false }));
    } finally {
      if (!dryRun) props.onDone();
    }
  };

  const results = run?.progress.results ?? [];
  const ok = results.filter((r) => r.ok).length;
  const failed = results.length - ok;
  const dryRunDone = run?.dryRun === true && !run.running && run.progress.done !== null;

  return (
    <section className="bulk" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Bulk: {props.what}</h2>
      {choices.length === 0 ? (
        <p className="muted">None of your roles may fire a transition of this type.</p>
      ) : (
        <div className="row wrap">
          <div className="field">
            <label htmlFor={`${id}-t`}>Transition</label>
            <select
              id={`${id}-t`}
              value={name}
              disabled={run?.running}
              onChange={(e) => {
                setName(e.target.value);
                setInput({});
              }}
            >
              <option value="">— choose —</option>
              {choices.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.label ?? props.labels.transition(t.name)}
                  {t.from && t.from.length ? ` (from ${t.from.map(props.labels.state).join(', ')})` : ''}
                </option>
              ))}
            </select>
          </div>
          <button type="button" className="secondary" disabled={!chosen || props.count === 0 || run?.running} onClick={() => void go(true)}>
            Dry run
          </button>
          <button type="button" disabled={!dryRunDone || run.running} onClick={() => void go(false)}>
            {chosen ? `Run ${label} on ${String(props.count)}` : 'Run'}
          </button>
        </div>
      )}
      {chosen?.input_schema ? (
        <fieldset className="transition-input">
          <legend>Input of {label}</legend>
          <SchemaForm
            idPrefix={`${id}-input`}
            schema={createSchema(chosen.input_schema)}
            uiSchema={uiSchemaFor(chosen.input_schema)}
            formData={input}
            onChange={(v) => {
              setInput(v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
            }}
            onSubmit={() => void go(true)}
          >
            <span className="muted">The same input for every entity.</span>
          </SchemaForm>
        </fieldset>
      ) : null}
      {run ? (
        <div className="bulk-report">
          <progress aria-label={run.dryRun ? 'Dry run progress' : 'Progress'} max={Math.max(props.count, results.length, 1)} value={results.length} />
          <p role="status">
            {run.dryRun ? 'Dry run' : label}: {run.running ? `${String(results.length)} of ${String(props.count)} done` : 'done'};{' '}
            {run.dryRun ? `${String(ok)} would succeed, ${String(failed)} would fail` : `${String(ok)} succeeded, ${String(failed)} failed`}.
            {dryRunDone ? ' Nothing was changed.' : ''}
          </p>
          {run.error ? <Alert>{run.error}</Alert> : null}
          {failed > 0 ? (
            <ul className="failures" aria-label={run.dryRun ? 'Would fail' : 'Failures'}>
              {failureGroups(results).map((g) => (
                <li key={g.message}>
                  <strong>{g.message}</strong> ({g.ids.length}):{' '}
                  {g.ids.slice(0, 20).map((eid, i) => (
                    <span key={eid}>
                      {i > 0 ? ', ' : ''}
                      <RefLink tenant={props.tenant} type={props.type} id={eid} />
                    </span>
                  ))}
                  {g.ids.length > 20 ? ` and ${String(g.ids.length - 20)} more` : ''}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
