import { useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Alert } from '../../../components/Alert';
import { entityName } from '../../../lib/entityName';
import { humanize } from '../../../lib/humanize';
import { errorMessage } from '../../../lib/envelope';
import { dryRun, listUsers, searchEntities } from '../api/draft';
import { useDraft } from '../hooks/draftContext';
import { readDryRun, type DryRunView } from '../lib/dryRun';
import { parseRule } from '../lib/guards';
import { findType } from '../lib/model';

/**
 * Tries the selected transition of the draft on a live entity, as any user: the server runs it
 * with the draft's definitions and rolls it back. Nothing is written.
 */
export function TryPanel({ type, transition }: { type: string; transition: string }) {
  const draft = useDraft();
  const id = useId();
  const [q, setQ] = useState('');
  const [entity, setEntity] = useState('');
  const [actAs, setActAs] = useState('');
  const [input, setInput] = useState('{}');
  const [result, setResult] = useState<DryRunView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [running, setRunning] = useState(false);
  const entities = useQuery({
    queryKey: ['t', draft.tenant, 'try', type, q],
    queryFn: () => searchEntities(draft.tenant, type, q),
  });
  const users = useQuery({ queryKey: ['t', draft.tenant, 'users'], queryFn: () => listUsers(draft.tenant) });
  const chosen = entity || entities.data?.[0]?.id || '';
  // A state as people read it: the draft's label, else its name made readable.
  const states = findType(draft.pkg, type)?.workflow?.states ?? {};
  const stateLabel = (s: string) => (Object.hasOwn(states, s) ? states[s]?.label : undefined) ?? humanize(s);

  const run = async () => {
    const parsed = parseRule(input);
    if (!parsed.ok || typeof parsed.rule !== 'object' || parsed.rule === null || Array.isArray(parsed.rule)) {
      setError('The input must be a JSON object.');
      return;
    }
    setRunning(true);
    setError(null);
    try {
      const answer = await dryRun(draft.tenant, {
        type,
        id: chosen,
        transition,
        input: parsed.rule as Record<string, unknown>,
        ...(actAs ? { act_as: actAs } : {}),
        package: draft.pkg,
      });
      setResult(readDryRun(answer));
    } catch (e) {
      setResult(null);
      setError(errorMessage(e));
    } finally {
      setRunning(false);
    }
  };

  return (
    <section className="try" aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>Try it on a live entity</h3>
      <div className="field">
        <label htmlFor={`${id}-q`}>Search entities</label>
        <input
          id={`${id}-q`}
          type="search"
          value={q}
          onChange={(e) => {
            setQ(e.target.value);
            setEntity('');
          }}
        />
      </div>
      <div className="field">
        <label htmlFor={`${id}-entity`}>Entity</label>
        <select
          id={`${id}-entity`}
          value={chosen}
          onChange={(e) => {
            setEntity(e.target.value);
          }}
        >
          {(entities.data ?? []).map((e) => (
            <option key={e.id} value={e.id}>
              {entityName(e)} · {stateLabel(e.state)}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor={`${id}-as`}>Act as</label>
        <select
          id={`${id}-as`}
          value={actAs}
          onChange={(e) => {
            setActAs(e.target.value);
          }}
        >
          <option value="">Myself</option>
          {(users.data ?? []).map((u) => (
            <option key={u.id} value={u.id}>
              {u.name || u.email} ({u.roles.join(', ')})
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor={`${id}-input`}>Input (JSON)</label>
        <textarea
          id={`${id}-input`}
          className="code"
          rows={2}
          value={input}
          onChange={(e) => {
            setInput(e.target.value);
          }}
        />
      </div>
      <button type="button" onClick={() => void run()} disabled={running || chosen === ''}>
        Dry run
      </button>
      {error ? <Alert>{error}</Alert> : null}
      {result ? <DryRunResult view={result} /> : null}
    </section>
  );
}

function DryRunResult({ view }: { view: DryRunView }) {
  return (
    <div className="dry-run" role="region" aria-label="Dry run result">
      <p className={view.applied ? 'ok' : 'refused'}>
        {view.applied ? 'It would apply (nothing was written).' : `Refused: ${view.message ?? 'the transition cannot be fired'}`}
      </p>
      {view.guards.length > 0 && (
        <ul aria-label="Guards">
          {view.guards.map((g, i) => (
            <li key={String(i)} className={g.passed ? 'ok' : 'refused'}>
              {g.passed ? 'passes' : 'fails'}: {g.message}
              {g.values ? <code> {g.values}</code> : null}
            </li>
          ))}
        </ul>
      )}
      {view.changes.map((c) => (
        <table key={c.id} className="types-table">
          <caption>
            {c.created ? 'Created' : 'Changed'} {c.type} {c.id.slice(0, 8)}
          </caption>
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
            </tr>
          </thead>
          <tbody>
            {c.fields.map((f) => (
              <tr key={f.field}>
                <th scope="row">{f.field}</th>
                <td>{f.before}</td>
                <td>{f.after}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
      {view.events.length > 0 && <p>Events: {view.events.join(', ')}</p>}
      {view.followUps.length > 0 && <p>Then: {view.followUps.join(', ')}</p>}
    </div>
  );
}
