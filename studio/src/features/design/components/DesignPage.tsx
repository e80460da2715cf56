import { Link, useNavigate, useParams } from 'react-router';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useDraft } from '../hooks/draftContext';
import { FilesPanel } from './FilesPanel';
import { ProblemsPanel } from './ProblemsPanel';
import { SaveStatus } from './SaveStatus';
import type { Target } from '../lib/problems';

/** The draft's types: where an admin starts designing. */
export function DesignPage() {
  const tenant = useParams().tenant ?? '';
  const draft = useDraft();
  const navigate = useNavigate();
  useDocumentTitle('Design', tenant);
  const goTo = (t: Target) => {
    if (t.kind === 'state' || t.kind === 'transition') void navigate(paths.workflow(tenant, t.type));
    else if (t.kind === 'field' || t.kind === 'type') void navigate(paths.designType(tenant, t.type));
  };
  return (
    <>
      <div className="designer-head">
        <h1>Design</h1>
        <SaveStatus />
      </div>
      <p className="muted">
        {draft.version === 0
          ? 'The draft is the published configuration: edit anything and it is saved as a draft.'
          : `Draft version ${String(draft.version)}, not published yet.`}{' '}
        <Link to={paths.publish(tenant)}>Review and publish</Link>
      </p>
      <table className="types-table">
        <caption>Entity types of the draft</caption>
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Fields</th>
            <th scope="col">States</th>
            <th scope="col">Transitions</th>
            <th scope="col">Design</th>
          </tr>
        </thead>
        <tbody>
          {draft.pkg.types.map((t) => (
            <tr key={t.name}>
              <th scope="row">
                {t.label ?? t.name} <span className="muted">{t.label ? t.name : ''}</span>
              </th>
              <td>{Object.keys(t.fields ?? {}).length}</td>
              <td>{t.workflow ? Object.keys(t.workflow.states).length : 1}</td>
              <td>{Object.keys(t.workflow?.transitions ?? {}).length}</td>
              <td className="row">
                <Link to={paths.designType(tenant, t.name)} aria-label={`Fields of ${t.name}`}>
                  Fields
                </Link>
                {t.workflow ? (
                  <Link to={paths.workflow(tenant, t.name)} aria-label={`Workflow of ${t.name}`}>
                    Workflow
                  </Link>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ProblemsPanel onGo={goTo} />
      <FilesPanel />
    </>
  );
}
