import { useId, useState } from 'react';
import { parseRule } from '../lib/guards';

/**
 * A JSON value edited as text, applied whenever the text parses (an error is shown until it
 * does); empty text clears it when `optional`.
 */
export function JsonField({
  label,
  value,
  onChange,
  rows = 3,
  optional = false,
}: {
  label: string;
  value: unknown;
  onChange: (value: unknown) => void;
  rows?: number;
  optional?: boolean;
}) {
  const id = useId();
  // Small fields (a rule) keep JSON on one line; larger ones (loads, schemas) are indented.
  const indent = rows > 2 && value !== null && typeof value === 'object' ? 2 : 0;
  const shown = value === undefined ? '' : JSON.stringify(value, null, indent);
  const [text, setText] = useState(shown);
  const [error, setError] = useState<string | null>(null);
  const [from, setFrom] = useState(shown);
  if (from !== shown) {
    setFrom(shown);
    setText(shown);
    setError(null);
  }
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        className="code"
        rows={rows}
        value={text}
        spellCheck={false}
        aria-invalid={error !== null}
        onChange={(e) => {
          const next = e.target.value;
          setText(next);
          if (optional && next.trim() === '') {
            setError(null);
            onChange(undefined);
            return;
          }
          const parsed = parseRule(next);
          if (parsed.ok) {
            setError(null);
            onChange(parsed.rule);
          } else setError(parsed.error);
        }}
      />
      {error ? <p className="field-error">{error}</p> : null}
    </div>
  );
}
