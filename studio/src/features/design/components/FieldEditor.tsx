import { useId, useState } from 'react';
import { useDraft } from '../hooks/draftContext';
import {
  addNestedField,
  changeElementKind,
  changeKind,
  FIELD_KINDS,
  holdsFields,
  nestedFields,
  pathText,
  removeFieldAt,
  renameFieldAt,
  ROUNDING_MODES,
  updateFieldAt,
  type FieldJson,
  type FieldKind,
} from '../lib/fields';
import { parseValue } from '../lib/guards';
import { NameField } from './NameField';

interface Props {
  type: string;
  /** The field's path: its name, then nested names (`['items', 'quantity']`). */
  path: string[];
  field: FieldJson;
  onRenamed: (to: string[]) => void;
  onRemoved: () => void;
  /** Selects another field (a nested one of this field). */
  onSelect: (path: string[]) => void;
}

const numberOrUndefined = (text: string) => (text.trim() === '' ? undefined : Number(text));

/** One field of a type: every option of its kind, edited in place. */
export function FieldEditor({ type, path, field, onRenamed, onRemoved, onSelect }: Props) {
  const draft = useDraft();
  const id = useId();
  const [error, setError] = useState<string | null>(null);
  const [nestedName, setNestedName] = useState('');
  const [nestedKind, setNestedKind] = useState<FieldKind>('string');
  const name = pathText(path);
  const set = (patch: Partial<FieldJson>, coalesce?: string) => {
    const r = updateFieldAt(draft.pkg, type, path, patch);
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
        value={path[path.length - 1] ?? ''}
        onRename={(to) => {
          const r = renameFieldAt(draft.pkg, type, path, to);
          if (!r.ok) return r.error;
          draft.edit(r.pkg);
          onRenamed([...path.slice(0, -1), to]);
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
      {field.type === 'array' && (
        <div className="field">
          <label htmlFor={`${id}-element`}>Element kind</label>
          <select
            id={`${id}-element`}
            value={field.items?.type ?? 'string'}
            onChange={(e) => {
              set(changeElementKind(field, e.target.value as FieldKind, type));
            }}
          >
            {FIELD_KINDS.filter((k) => k !== 'array').map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </div>
      )}
      {holdsFields(field) && (
        <fieldset>
          <legend>{field.type === 'array' ? 'Fields of each element' : 'Nested fields'}</legend>
          {Object.keys(nestedFields(field) ?? {}).length === 0 ? <p className="muted">None yet.</p> : null}
          <ul className="nested-fields">
            {Object.entries(nestedFields(field) ?? {}).map(([n, def]) => (
              <li key={n}>
                <button
                  type="button"
                  className="link"
                  aria-label={`Edit field ${pathText([...path, n])}`}
                  onClick={() => {
                    onSelect([...path, n]);
                  }}
                >
                  {n}
                </button>{' '}
                <span className="muted">{def.type}</span>
              </li>
            ))}
          </ul>
          <div className="row wrap">
            <div className="field">
              <label htmlFor={`${id}-nested`}>New nested field</label>
              <input
                id={`${id}-nested`}
                value={nestedName}
                onChange={(e) => {
                  setNestedName(e.target.value);
                }}
              />
            </div>
            <div className="field">
              <label htmlFor={`${id}-nested-kind`}>Nested field kind</label>
              <select
                id={`${id}-nested-kind`}
                value={nestedKind}
                onChange={(e) => {
                  setNestedKind(e.target.value as FieldKind);
                }}
              >
                {FIELD_KINDS.map((k) => (
                  <option key={k} value={k}>
                    {k}
                  </option>
                ))}
              </select>
            </div>
          </div>
          <button
            type="button"
            onClick={() => {
              const r = addNestedField(draft.pkg, type, path, nestedName, nestedKind);
              if (!r.ok) {
                setError(r.error);
                return;
              }
              setError(null);
              draft.edit(r.pkg);
              setNestedName('');
            }}
          >
            Add nested field
          </button>
        </fieldset>
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
          const r = removeFieldAt(draft.pkg, type, path);
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
