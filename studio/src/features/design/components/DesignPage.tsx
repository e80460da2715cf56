import { useId, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { addType, removeType } from '../lib/fields';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useDraft } from '../hooks/draftContext';
import { ConfirmDialog } from './ConfirmDialog';
import { DecisionPlayground } from './DecisionPlayground';
import { FilesPanel } from './FilesPanel';
import { ProblemsPanel } from './ProblemsPanel';
import { SaveStatus } from './SaveStatus';
import type { Target } from '../lib/problems';

/** The draft's types: where an admin starts designing. */
export function DesignPage() {
  const tenant = useParams().tenant ?? '';
  const draft = useDraft();
  const navigate = useNavigate();
  const id = useId();
  const [newType, setNewType] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [discarding, setDiscarding] = useState(false);
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
      {draft.version > 0 ? (
        <button
          type="button"
          className="secondary"
          onClick={() => {
            setDiscarding(true);
          }}
        >
          Discard the draft
        </button>
      ) : null}
      {discarding && (
        <ConfirmDialog
          title="Discard the draft?"
          consequences={['every change since the live version is lost (for every admin)']}
          confirm="Discard the draft"
          onCancel={() => {
            setDiscarding(false);
          }}
          onConfirm={() => {
            setDiscarding(false);
            void draft.discard();
          }}
        />
      )}
      <table className="types-table">
        <caption>Entity types of the draft</caption>
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Fields</th>
            <th scope="col">States</th>
            <th scope="col">Transitions</th>
            <th scope="col">Design</th>
            <th scope="col">Remove</th>
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
              <td>
                {/* A flex box inside the cell: a flex cell is no longer a table cell (its row's
                    border and height broke at this column). */}
                <span className="row">
                  <Link to={paths.designType(tenant, t.name)} aria-label={`Fields of ${t.name}`}>
                    Fields
                  </Link>
                  {t.workflow ? (
                    <Link to={paths.workflow(tenant, t.name)} aria-label={`Workflow of ${t.name}`}>
                      Workflow
                    </Link>
                  ) : null}
                </span>
              </td>
              <td>
                <button
                  type="button"
                  className="link danger-link"
                  aria-label={`Remove type ${t.name}`}
                  onClick={() => {
                    const r = removeType(draft.pkg, t.name);
                    if (r.ok) {
                      setError(null);
                      draft.edit(r.pkg);
                    } else setError(r.error);
                  }}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="toolbar" role="toolbar" aria-label="Types">
        <label htmlFor={`${id}-new`}>New type</label>
        <input id={`${id}-new`} value={newType} placeholder="complaint" onChange={(e) => { setNewType(e.target.value); }} />
        <button
          type="button"
          onClick={() => {
            const r = addType(draft.pkg, newType);
            if (!r.ok) {
              setError(r.error);
              return;
            }
            setError(null);
            draft.edit(r.pkg);
            void navigate(paths.designType(tenant, newType));
          }}
        >
          Add type
        </button>
        <button type="button" className="secondary" onClick={draft.undo} disabled={!draft.canUndo}>
          Undo
        </button>
        <button type="button" className="secondary" onClick={draft.redo} disabled={!draft.canRedo}>
          Redo
        </button>
      </div>
      {error ? <Alert>{error}</Alert> : null}
      <ProblemsPanel onGo={goTo} />
      <DecisionPlayground />
      <FilesPanel />
    </>
  );
}
