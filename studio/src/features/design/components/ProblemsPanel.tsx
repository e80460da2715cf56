import { useDraft } from '../hooks/draftContext';
import { describeLocation, problemTarget, sortProblems, type Target } from '../lib/problems';

/** The server's problems with the draft; each one a button to what it is about. */
export function ProblemsPanel({ onGo }: { onGo: (target: Target) => void }) {
  const draft = useDraft();
  const problems = sortProblems(draft.problems);
  const errors = problems.filter((p) => p.severity === 'error').length;
  return (
    <section className="problems" aria-labelledby="problems-h">
      <h2 id="problems-h">
        Problems <span className="count">{problems.length}</span>
        {draft.validating ? <span className="muted"> checking…</span> : null}
      </h2>
      {problems.length === 0 ? (
        <p className="muted">The server finds no problem with this draft.</p>
      ) : (
        <>
          <p className="muted">
            {errors} {errors === 1 ? 'error' : 'errors'}, {problems.length - errors} warnings: a draft with errors cannot be
            published.
          </p>
          <ul aria-label="Problems">
            {problems.map((p, i) => (
              <li key={`${p.file}${p.path}${String(i)}`} className={p.severity}>
                <button
                  type="button"
                  className="link"
                  onClick={() => {
                    onGo(problemTarget(p));
                  }}
                >
                  <span className="severity">{p.severity}</span> {describeLocation(p)}
                </button>
                <span className="message">{p.message}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
