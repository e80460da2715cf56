import { useEffect, useRef } from 'react';

export interface ConfirmProps {
  title: string;
  /** What else goes (or refers to it), listed before anything is deleted. */
  consequences: string[];
  confirm: string;
  onConfirm: () => void;
  onCancel: () => void;
}

/** A modal question before a destructive edit (it can still be undone afterwards). */
export function ConfirmDialog({ title, consequences, confirm, onConfirm, onCancel }: ConfirmProps) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby="confirm-title" onCancel={onCancel}>
      <h2 id="confirm-title">{title}</h2>
      {consequences.length > 0 ? (
        <>
          <p>This also changes:</p>
          <ul aria-label="What refers to it">
            {consequences.map((c) => (
              <li key={c}>{c}</li>
            ))}
          </ul>
        </>
      ) : (
        <p>Nothing else refers to it.</p>
      )}
      <div className="row">
        <button type="button" className="danger" onClick={onConfirm}>
          {confirm}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
