import { useId, useState } from 'react';

/** A name edited in place and committed on Enter or when leaving the field (a rename). */
export function NameField({ value, onRename }: { value: string; onRename: (to: string) => string | null }) {
  const [text, setText] = useState(value);
  const [error, setError] = useState<string | null>(null);
  const id = useId();
  // A rename done elsewhere (undo) shows here: the text follows the value it was edited from.
  const [from, setFrom] = useState(value);
  if (from !== value) {
    setFrom(value);
    setText(value);
    setError(null);
  }
  const commit = () => {
    setError(text === value ? null : onRename(text));
  };
  return (
    <div className="field">
      <label htmlFor={id}>Name</label>
      <input
        id={id}
        value={text}
        aria-invalid={error !== null}
        aria-describedby={error ? `${id}-error` : undefined}
        onChange={(e) => {
          setText(e.target.value);
        }}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === 'Enter') commit();
        }}
      />
      {error ? (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      ) : null}
    </div>
  );
}
