import { useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Alert } from '../../../components/Alert';
import { errorMessage } from '../../../lib/envelope';
import { getVersion, listVersions } from '../api/draft';
import { useDraft } from '../hooks/draftContext';
import { packageDiff, type Change } from '../lib/diff';
import { asPackage } from '../lib/model';
import { When } from '../../../components/When';

export function ChangeList({ changes, label }: { changes: Change[]; label: string }) {
  if (changes.length === 0) return <p className="muted">No difference.</p>;
  return (
    <ul aria-label={label} className="changes">
      {changes.map((c) => (
        <li key={`${c.kind}:${c.what}`} className={c.kind}>
          <span className="change-kind">{c.kind}</span> {c.what}
        </li>
      ))}
    </ul>
  );
}

/** The published versions (who, when, their comment) and what changed between any two of them. */
export function VersionsPanel() {
  const draft = useDraft();
  const id = useId();
  const versions = useQuery({ queryKey: ['t', draft.tenant, 'versions', draft.version], queryFn: () => listVersions(draft.tenant) });
  const list = versions.data ?? [];
  const last = list.at(-1)?.version ?? 0;
  const [from, setFrom] = useState<number | null>(null);
  const [to, setTo] = useState<number | null>(null);
  const a = from ?? Math.max(last - 1, 1);
  const b = to ?? last;
  const diff = useQuery({
    queryKey: ['t', draft.tenant, 'version-diff', a, b],
    enabled: last > 0,
    queryFn: async () => {
      const [x, y] = await Promise.all([getVersion(draft.tenant, a), getVersion(draft.tenant, b)]);
      const pa = asPackage(x);
      const pb = asPackage(y);
      if (!pa || !pb) throw new Error('A stored version is not a package.');
      return packageDiff(pa, pb);
    },
  });
  const select = (label: string, value: number, set: (v: number) => void) => (
    <div className="field">
      <label htmlFor={`${id}-${label}`}>{label}</label>
      <select
        id={`${id}-${label}`}
        value={value}
        onChange={(e) => {
          set(Number(e.target.value));
        }}
      >
        {list.map((v) => (
          <option key={v.version} value={v.version}>
            {v.version}
          </option>
        ))}
      </select>
    </div>
  );
  return (
    <section className="plan-section" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Versions</h2>
      {versions.isError ? <Alert>{errorMessage(versions.error)}</Alert> : null}
      <table className="types-table">
        <caption>Published versions</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Published</th>
            <th scope="col">By</th>
            <th scope="col">Comment</th>
            <th scope="col">Live</th>
          </tr>
        </thead>
        <tbody>
          {[...list].reverse().map((v) => (
            <tr key={v.version}>
              <th scope="row">{v.version}</th>
              <td>
                <When iso={v.created_at} />
              </td>
              <td>{v.created_by}</td>
              <td className="comment">{v.comment ?? ''}</td>
              <td>{v.live ? 'live' : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.length > 1 && (
        <>
          <div className="row wrap">
            {select('Compare version', a, setFrom)}
            {select('with version', b, setTo)}
          </div>
          {diff.isError ? <Alert>{errorMessage(diff.error)}</Alert> : null}
          {diff.data ? <ChangeList changes={diff.data} label={`Changes from version ${String(a)} to ${String(b)}`} /> : null}
        </>
      )}
    </section>
  );
}
