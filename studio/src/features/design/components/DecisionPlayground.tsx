// The decision tables' playground: pick a table, type its inputs, and the server evaluates it
// (`POST …/decisions/{name}/evaluate`, the live version's table) and says which rows matched and
// which one won, shown on the table's rules.

import { useId, useState } from 'react';
import { Alert } from '../../../components/Alert';
import { errorMessage } from '../../../lib/envelope';
import { evaluateDecision } from '../api/draft';
import { useDraft } from '../hooks/draftContext';
import { cellText, decisionTables, inputsOf, readEvaluation, suggestions, type EvaluationView } from '../lib/decisions';

export function DecisionPlayground() {
  const draft = useDraft();
  const id = useId();
  const tables = decisionTables(draft.pkg);
  const [name, setName] = useState('');
  const [raw, setRaw] = useState<Record<string, string>>({});
  const [result, setResult] = useState<EvaluationView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const table = tables.find((t) => t.name === name) ?? tables[0];
  if (!table) return null;

  const evaluate = async () => {
    setError(null);
    try {
      setResult(readEvaluation(await evaluateDecision(draft.tenant, table.name, inputsOf(table, raw))));
    } catch (e) {
      setResult(null);
      setError(errorMessage(e));
    }
  };

  return (
    <section className="decisions" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Decision tables</h2>
      <p className="muted">Evaluated by the server with the live version’s table (publish a changed table to try it).</p>
      <div className="field">
        <label htmlFor={`${id}-table`}>Table</label>
        <select
          id={`${id}-table`}
          value={table.name}
          onChange={(e) => {
            setName(e.target.value);
            setRaw({});
            setResult(null);
          }}
        >
          {tables.map((t) => (
            <option key={t.name} value={t.name}>
              {t.label}
            </option>
          ))}
        </select>
      </div>
      <div className="row wrap">
        {table.inputs.map((input) => (
          <div className="field" key={input.name}>
            <label htmlFor={`${id}-in-${input.name}`}>{input.label}</label>
            {input.type === 'boolean' || input.values ? (
              <select
                id={`${id}-in-${input.name}`}
                value={raw[input.name] ?? ''}
                onChange={(e) => {
                  setRaw({ ...raw, [input.name]: e.target.value });
                }}
              >
                <option value="">(none)</option>
                {(input.type === 'boolean' ? ['true', 'false'] : (input.values ?? []).map(String)).map((v) => (
                  <option key={v} value={v}>
                    {v}
                  </option>
                ))}
              </select>
            ) : (
              <>
                {/* Free text, with the values the rules name offered as you type. */}
                <input
                  id={`${id}-in-${input.name}`}
                  value={raw[input.name] ?? ''}
                  list={input.type === 'string' ? `${id}-values-${input.name}` : undefined}
                  inputMode={['number', 'integer', 'decimal'].includes(input.type) ? 'decimal' : undefined}
                  onChange={(e) => {
                    setRaw({ ...raw, [input.name]: e.target.value });
                  }}
                />
                {input.type === 'string' ? (
                  <datalist id={`${id}-values-${input.name}`}>
                    {suggestions(table, input.name).map((v) => (
                      <option key={v} value={v} />
                    ))}
                  </datalist>
                ) : null}
              </>
            )}
          </div>
        ))}
      </div>
      <button type="button" onClick={() => void evaluate()}>
        Evaluate {table.label}
      </button>
      {error ? <Alert>{error}</Alert> : null}
      {result ? (
        <div role="region" aria-label="Decision result">
          <div role="status">
            <p>{result.defaultUsed ? 'No rule matched: the table’s default.' : 'The winning rule’s outputs:'}</p>
            <dl className="outputs">
              {Object.entries((result.outputs ?? {}) as Record<string, unknown>).map(([name, value]) => (
                <div key={name}>
                  <dt>{name}</dt>
                  <dd>{typeof value === 'string' ? value : JSON.stringify(value)}</dd>
                </div>
              ))}
            </dl>
          </div>
        </div>
      ) : null}
      <table className="types-table decision-rules">
        <caption>Rules of {table.label} (hit policy: {table.hit})</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            {table.inputs.map((i) => (
              <th scope="col" key={`in-${i.name}`}>
                {i.label}
              </th>
            ))}
            {table.outputs.map((o) => (
              <th scope="col" key={`out-${o}`}>
                → {o}
              </th>
            ))}
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {table.rules.map((r, i) => {
            const won = result?.winner === i;
            const matched = result?.matched.includes(i) ?? false;
            return (
              <tr key={String(i)} className={won ? 'winner' : matched ? 'matched' : undefined}>
                <th scope="row">{i + 1}</th>
                {table.inputs.map((input) => (
                  <td key={`in-${input.name}`}>{cellText(r.when[input.name])}</td>
                ))}
                {table.outputs.map((o) => (
                  <td key={`out-${o}`}>{cellText(r.then[o])}</td>
                ))}
                <td>{won ? 'won' : matched ? 'matched' : ''}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
