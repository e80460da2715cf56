import { useId, useState } from 'react';
import { Alert } from '../../../components/Alert';
import { errorMessage } from '../../../lib/envelope';
import { evaluateRule, searchEntities, whoAmI } from '../api/draft';
import { useDraft } from '../hooks/draftContext';
import { clauses, entityContext } from '../lib/clauses';
import { parseRule } from '../lib/guards';

interface Row {
  depth: number;
  text: string;
  kind: string;
  value: string;
  failed: boolean;
}

/**
 * Evaluates one guard against a live entity (its data filled in) or hand-written JSON, every
 * clause and variable on its own: what each part of the rule is worth, not only the result.
 */
export function GuardPlayground({ type, rule, label }: { type: string; rule: unknown; label: string }) {
  const draft = useDraft();
  const id = useId();
  const [context, setContext] = useState('{\n  "entity": {},\n  "input": {}\n}');
  const [rows, setRows] = useState<Row[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const fromEntity = async () => {
    try {
      const [entities, me] = await Promise.all([searchEntities(draft.tenant, type, ''), whoAmI()]);
      const first = entities[0];
      if (!first) {
        setError(`There is no ${type} yet: write the context by hand.`);
        return;
      }
      setContext(JSON.stringify(entityContext(first, { id: me.id, roles: me.roles }), null, 2));
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  const evaluate = async () => {
    const data = parseRule(context);
    if (!data.ok) {
      setError(`The context is not JSON: ${data.error}`);
      return;
    }
    setError(null);
    const parts = clauses(rule);
    const values = await Promise.all(
      parts.map(async (c) => {
        try {
          return { value: JSON.stringify(await evaluateRule(draft.tenant, c.rule, data.rule)), failed: false };
        } catch (e) {
          return { value: errorMessage(e), failed: true };
        }
      }),
    );
    setRows(parts.map((c, i) => ({ depth: c.depth, text: c.text, kind: c.kind, ...(values[i] ?? { value: '', failed: true }) })));
  };

  return (
    <details className="playground">
      <summary>{label}</summary>
      <div className="field">
        <label htmlFor={`${id}-ctx`}>Context (JSON)</label>
        <textarea
          id={`${id}-ctx`}
          className="code"
          rows={5}
          value={context}
          onChange={(e) => {
            setContext(e.target.value);
          }}
        />
      </div>
      <div className="row">
        <button type="button" className="secondary" onClick={() => void fromEntity()}>
          Fill from a live {type}
        </button>
        <button type="button" onClick={() => void evaluate()}>
          Evaluate
        </button>
      </div>
      {error ? <Alert>{error}</Alert> : null}
      {rows ? (
        <table className="types-table clauses" aria-label={`${label}: values`}>
          <thead>
            <tr>
              <th scope="col">Clause</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={String(i)} className={r.kind}>
                <td className={`depth-${String(Math.min(r.depth, 4))}`}>
                  <code>{r.text}</code>
                </td>
                <td className={r.failed ? 'field-error' : ''}>{r.value}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </details>
  );
}
