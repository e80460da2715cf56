import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Link, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { applyPackage, deleteDraft, getLive, planPackage } from '../api/draft';
import { packageDiff } from '../lib/diff';
import { asPackage } from '../lib/model';
import { useDraft } from '../hooks/draftContext';
import { SaveStatus } from './SaveStatus';
import { MigratePanel } from './MigratePanel';
import { ChangeList, VersionsPanel } from './VersionsPanel';

type Step =
  | { kind: 'idle' }
  | { kind: 'planning' }
  | { kind: 'planned'; text: string; changed: boolean }
  | { kind: 'publishing' }
  | { kind: 'published'; version: number }
  | { kind: 'failed'; message: string };

/** The plan of the draft (what publishing changes), then publishing it as a new version. */
export function PublishPage() {
  const tenant = useParams().tenant ?? '';
  const draft = useDraft();
  useDocumentTitle('Publish', tenant);
  const [step, setStep] = useState<Step>({ kind: 'idle' });
  const [comment, setComment] = useState('');
  const errors = draft.problems.filter((p) => p.severity === 'error').length;
  const live = useQuery({ queryKey: ['t', tenant, 'live', draft.version], queryFn: () => getLive(tenant) });
  const changes = useMemo(() => {
    const pkg = asPackage(live.data);
    return pkg ? packageDiff(pkg, draft.pkg) : null;
  }, [live.data, draft.pkg]);

  const plan = async () => {
    setStep({ kind: 'planning' });
    try {
      const p = await planPackage(tenant, draft.pkg);
      setStep({ kind: 'planned', text: p.text, changed: p.changed });
    } catch (e) {
      setStep({ kind: 'failed', message: errorMessage(e) });
    }
  };
  const publish = async () => {
    setStep({ kind: 'publishing' });
    try {
      const applied = await applyPackage(tenant, draft.pkg, comment);
      await deleteDraft(tenant);
      await draft.reload();
      setComment('');
      setStep({ kind: 'published', version: applied.version });
    } catch (e) {
      setStep({ kind: 'failed', message: errorMessage(e) });
    }
  };

  return (
    <>
      <p>
        <Link to={paths.design(tenant)}>← Types</Link>
      </p>
      <div className="designer-head">
        <h1>Publish</h1>
        <SaveStatus />
      </div>
      {errors > 0 ? (
        <Alert>
          The draft has {errors} {errors === 1 ? 'error' : 'errors'}: fix {errors === 1 ? 'it' : 'them'} before publishing.
        </Alert>
      ) : null}
      <h2>Changes in this draft</h2>
      {changes ? <ChangeList changes={changes} label="Changes in this draft" /> : null}
      <button type="button" onClick={() => void plan()} disabled={step.kind === 'planning' || step.kind === 'publishing'}>
        Show the plan
      </button>
      {step.kind === 'planned' && (
        <section aria-labelledby="plan-h" className="plan-section">
          <h2 id="plan-h">Plan</h2>
          <pre className="plan" aria-label="The plan">
            {step.text}
          </pre>
          {step.changed ? (
            <>
              <div className="field">
                <label htmlFor="publish-comment">Comment (what this version changes)</label>
                <textarea
                  id="publish-comment"
                  rows={2}
                  maxLength={1000}
                  value={comment}
                  onChange={(e) => {
                    setComment(e.target.value);
                  }}
                />
              </div>
              <button type="button" onClick={() => void publish()} disabled={errors > 0}>
                Publish
              </button>
            </>
          ) : (
            <p>Nothing to publish: the draft is the live configuration.</p>
          )}
        </section>
      )}
      {step.kind === 'published' && <p role="status">Published as version {step.version}.</p>}
      {step.kind === 'failed' && <Alert>{step.message}</Alert>}
      <MigratePanel />
      <VersionsPanel />
    </>
  );
}
