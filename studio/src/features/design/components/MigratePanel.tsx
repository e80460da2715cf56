import { useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Alert } from '../../../components/Alert';
import { errorMessage } from '../../../lib/envelope';
import { getVersion, listVersions, migrate } from '../api/draft';
import { useDraft } from '../hooks/draftContext';
import { mapRows, namesOf, stateMap } from '../lib/migration';
import { asPackage } from '../lib/model';

type Report = Awaited<ReturnType<typeof migrate>>;

/**
 * Entities stay on the version they were created under. This moves the in-flight ones to a
 * version: a dry run first (what moves, what cannot and why), a state map for states the
 * version no longer has, then the migration.
 */
export function MigratePanel() {
  const draft = useDraft();
  const id = useId();
  const versions = useQuery({ queryKey: ['t', draft.tenant, 'versions', draft.version], queryFn: () => listVersions(draft.tenant) });
  const live = versions.data?.find((v) => v.live)?.version ?? versions.data?.at(-1)?.version ?? 0;
  const [chosen, setChosen] = useState<number | null>(null);
  const to = chosen ?? live;
  const target = useQuery({
    queryKey: ['t', draft.tenant, 'version', to],
    enabled: to > 0,
    queryFn: async () => asPackage(await getVersion(draft.tenant, to)),
  });
  const [choices, setChoices] = useState<Record<string, string>>({});
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const rows = report ? mapRows(report.entities, target.data ?? null) : [];
  const names = namesOf(target.data ?? null);

  const run = async (dryRun: boolean) => {
    setBusy(true);
    setError(null);
    try {
      setReport(await migrate(draft.tenant, to, stateMap(choices), dryRun));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="plan-section" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Migrate in-flight entities</h2>
      <p className="muted">
        Entities keep running the version they were created under until they are migrated.
      </p>
      <div className="row wrap">
        <div className="field">
          <label htmlFor={`${id}-to`}>To version</label>
          <select
            id={`${id}-to`}
            value={to}
            onChange={(e) => {
              setChosen(Number(e.target.value));
              setReport(null);
            }}
          >
            {(versions.data ?? []).map((v) => (
              <option key={v.version} value={v.version}>
                {v.version}
                {v.live ? ' (live)' : ''}
              </option>
            ))}
          </select>
        </div>
        <button type="button" className="secondary" disabled={busy || to === 0} onClick={() => void run(true)}>
          Dry run the migration
        </button>
      </div>
      {rows.length > 0 && (
        <fieldset>
          <legend>State map: states version {to} does not have</legend>
          {rows.map((r) => (
            <div className="field" key={r.key}>
              <label htmlFor={`${id}-${r.key}`}>
                {names.type(r.type)} in {r.state} ({r.count}) goes to
              </label>
              <select
                id={`${id}-${r.key}`}
                value={choices[r.key] ?? ''}
                onChange={(e) => {
                  setChoices({ ...choices, [r.key]: e.target.value });
                }}
              >
                <option value="">stays on its version</option>
                {r.targets.map((s) => (
                  <option key={s} value={s}>
                    {names.state(r.type, s)}
                  </option>
                ))}
              </select>
            </div>
          ))}
        </fieldset>
      )}
      {error ? <Alert>{error}</Alert> : null}
      {report && (
        <div role="region" aria-label="Migration report">
          <p role="status">
            {report.dry_run ? 'Dry run: ' : 'Done: '}
            {report.moved} {report.dry_run ? 'would move' : 'moved'}, {report.cannot_move} cannot move, {report.pinned} stay (terminal).
          </p>
          {report.entities.length > 0 && (
            <table className="types-table">
              <caption>Entities on earlier versions</caption>
              <thead>
                <tr>
                  <th scope="col">Entity</th>
                  <th scope="col">From</th>
                  <th scope="col">To</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody>
                {report.entities.slice(0, 200).map((e) => (
                  <tr key={e.id}>
                    <th scope="row">
                      <span className="muted">{names.type(e.type)}</span> {e.title ?? e.id.slice(0, 8)}
                    </th>
                    <td className="state">
                      v{e.from_version} {names.state(e.type, e.from_state)}
                    </td>
                    <td className="state">
                      {e.to_state ? `v${String(report.to_version)} ${names.state(e.type, e.to_state)}` : ''}
                    </td>
                    <td>
                      {e.outcome.replace('_', ' ')}
                      {e.reasons?.length ? `: ${e.reasons.join('; ')}` : ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {report.dry_run && report.moved > 0 ? (
            <button type="button" disabled={busy} onClick={() => void run(false)}>
              Migrate {report.moved} {report.moved === 1 ? 'entity' : 'entities'}
            </button>
          ) : null}
        </div>
      )}
    </section>
  );
}
