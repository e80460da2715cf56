import { useEffect, useRef } from 'react';
import { useDraft } from '../hooks/draftContext';

/** Someone saved the draft meanwhile: take theirs or keep ours, never lose either silently. */
export function ConflictDialog() {
  const draft = useDraft();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  const c = draft.conflict;
  if (!c) return null;
  const who = c.updatedBy ? ` by ${c.updatedBy}` : '';
  const when = c.updatedAt ? ` at ${new Date(c.updatedAt).toLocaleString()}` : '';
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="conflict-title">
      <h2 id="conflict-title">The draft was changed elsewhere</h2>
      <p>
        Someone saved this tenant’s draft{who}
        {when} while you were editing it. Your last changes are not saved.
      </p>
      <div className="row">
        <button type="button" onClick={() => void draft.reload()}>
          Reload their draft
        </button>
        <button type="button" className="secondary" onClick={() => void draft.overwrite()}>
          Overwrite with mine
        </button>
      </div>
    </dialog>
  );
}
