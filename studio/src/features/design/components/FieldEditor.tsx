import { useId, useState } from 'react';
import { useDraft } from '../hooks/draftContext';
import {
  changeKind,
  FIELD_KINDS,
  removeField,
  renameField,
  ROUNDING_MODES,
  updateField,
  type FieldJson,
  type FieldKind,
} from '../lib/fields';
import { parseValue } from '../lib/guards';
import { NameField } from './NameField';

interface Props {
  type: string;
  name: string;
  field: FieldJson;
  onRenamed: (to: string) => void;
  onRemoved: () => void;
}

const numberOrUndefined = (text: string) => (text.trim() === '' ? undefined : Number(text));

/** One field of a type: every option of its kind, edited in place. */
export function FieldEditor({ type, name, field, onRenamed, onRemoved }: Props) {
  const draft = useDraft();
  const id = useId();
  const [error, setError] = useState<string | null>(null);
  const set = (patch: Partial<FieldJson>, coalesce?: string) => {
    const r = updateField(draft.pkg, type, name, patch);
    if (r.ok) draft.edit(r.pkg, coalesce);
    else setError(r.error);
  };
  const check = (key: keyof FieldJson & string, label: string) => (
    <label className="check">
      <input
        type="checkbox"
        checked={field[key] === true}
        onChange={(e) => {
          set({ [key]: e.target.checked ? true : undefined });
        }}
      />
      {label}
    </label>
  );
  const text = (key: keyof FieldJson & string, label: string, kind: 'text' | 'number' = 'text') => {
    const value = field[key];
    return (
      <div className="field">
        <label htmlFor={`${id}-${key}`}>{label}</label>
        <input
          id={`${id}-${key}`}
          type={kind}
          value={typeof value === 'string' || typeof value === 'number' ? String(value) : ''}
          onChange={(e) => {
            const v = kind === 'number' ? numberOrUndefined(e.target.value) : e.target.value || undefined;
            set({ [key]: v }, `field-${key}:${type}.${name}`);
          }}
        />
      </div>
    );
  };

  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Field {name}</h2>
      <NameField
        value={name}
        onRename={(to) => {
          const r = renameField(draft.pkg, type, name, to);
          if (!r.ok) return r.error;
          draft.edit(r.pkg);
          onRenamed(to);
          return null;
        }}
      />
      <div className="field">
        <label htmlFor={`${id}-kind`}>Kind</label>
        <select
          id={`${id}-kind`}
          value={field.type}
          onChange={(e) => {
            set(changeKind(field, e.target.value as FieldKind));
          }}
        >
          {FIELD_KINDS.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </div>
      {text('label', 'Label')}
      {text('description', 'Description')}
      <div className="field">
        <label htmlFor={`${id}-default`}>Default</label>
        <input
          id={`${id}-default`}
          value={field.default === undefined ? '' : typeof field.default === 'string' ? field.default : JSON.stringify(field.default)}
          onChange={(e) => {
            set({ default: e.target.value === '' ? undefined : parseValue(e.target.value) }, `field-default:${type}.${name}`);
          }}
        />
      </div>
      {field.type === 'enum' && (
        <div className="field">
          <label htmlFor={`${id}-values`}>Values (comma-separated)</label>
          <input
            id={`${id}-values`}
            value={(field.values ?? []).join(', ')}
            onChange={(e) => {
              const values = e.target.value.split(',').map((v) => v.trim()).filter(Boolean);
              set({ values }, `field-values:${type}.${name}`);
            }}
          />
        </div>
      )}
      {field.type === 'reference' && (
        <div className="field">
          <label htmlFor={`${id}-to`}>Refers to</label>
          <select
            id={`${id}-to`}
            value={field.to ?? ''}
            onChange={(e) => {
              set({ to: e.target.value });
            }}
          >
            {draft.pkg.types.map((t) => (
              <option key={t.name} value={t.name}>
                {t.name}
              </option>
            ))}
          </select>
        </div>
      )}
      {(field.type === 'number' || field.type === 'integer') && (
        <div className="row">
          {text('minimum', 'Minimum', 'number')}
          {text('maximum', 'Maximum', 'number')}
        </div>
      )}
      {field.type === 'decimal' && (
        <>
          <div className="row">
            {text('scale', 'Scale (digits after the point)', 'number')}
            {text('precision', 'Precision (digits in all, default 18)', 'number')}
          </div>
          <div className="row">
            {text('minimum', 'Minimum', 'number')}
            {text('maximum', 'Maximum', 'number')}
          </div>
          <div className="field">
            <label htmlFor={`${id}-rounding`}>Rounding</label>
            <select
              id={`${id}-rounding`}
              value={field.rounding ?? ''}
              onChange={(e) => {
                set({ rounding: e.target.value === '' ? undefined : e.target.value });
              }}
            >
              <option value="">none: refuse more decimals than the scale</option>
              {ROUNDING_MODES.map((m) => (
                <option key={m} value={m}>
                  {m.replace('_', ' ')}
                </option>
              ))}
            </select>
          </div>
        </>
      )}
      {field.type === 'string' && (
        <>
          <div className="row">
            {text('min_length', 'Minimum length', 'number')}
            {text('max_length', 'Maximum length', 'number')}
          </div>
          {text('pattern', 'Pattern (regular expression)')}
        </>
      )}
      {(field.type === 'object' || field.type === 'array') && (
        <p className="muted">Its nested {field.type === 'object' ? 'fields' : 'element'} are edited in the package files for now.</p>
      )}
      <fieldset>
        <legend>Options</legend>
        {check('required', 'Required')}
        {check('generated', 'Generated by the server')}
        {check('filterable', 'Filterable')}
        {check('sortable', 'Sortable')}
        {check('searchable', 'Searchable')}
      </fieldset>
      {error ? <p className="field-error">{error}</p> : null}
      <button
        type="button"
        className="danger"
        onClick={() => {
          const r = removeField(draft.pkg, type, name);
          if (!r.ok) {
            setError(r.error);
            return;
          }
          draft.edit(r.pkg);
          onRemoved();
        }}
      >
        Remove field {name}
      </button>
    </section>
  );
}
