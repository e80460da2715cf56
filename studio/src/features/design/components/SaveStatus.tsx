import { useDraft } from '../hooks/draftContext';

const TEXT = {
  saved: 'All changes saved',
  unsaved: 'Unsaved changes',
  saving: 'Saving…',
  conflict: 'Not saved: the draft changed elsewhere',
  failed: 'Not saved',
} as const;

/** Whether the draft is saved, announced politely to screen readers. */
export function SaveStatus() {
  const draft = useDraft();
  return (
    <span role="status" className={`save-status ${draft.save}`}>
      {TEXT[draft.save]}
      {draft.save === 'failed' && draft.saveError ? `: ${draft.saveError}` : ''}
    </span>
  );
}
