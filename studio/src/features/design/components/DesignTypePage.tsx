import { useId, useState } from 'react';
import { Link, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useDraft } from '../hooks/draftContext';
import { addField, fieldAt, FIELD_KINDS, flattenFields, pathText, updateType, type FieldJson, type FieldKind } from '../lib/fields';
import { findType } from '../lib/model';
import { FieldEditor } from './FieldEditor';
import { SaveStatus } from './SaveStatus';
import { TemplatePreview } from './TemplatePreview';

function summary(def: FieldJson): string {
  const parts: string[] = [def.type];
  if (def.to) parts.push(`→ ${def.to}`);
  if (def.required) parts.push('required');
  if (def.generated) parts.push('generated');
  if (def.values) parts.push(`one of ${def.values.join(', ')}`);
  if (def.type === 'array' && def.items) parts.push(`of ${def.items.type}`);
  return parts.join(', ');
}

function isNumber(v: unknown): v is { field: string; template: string; [key: string]: unknown } {
  return typeof v === 'object' && v !== null && typeof (v as { field?: unknown }).field === 'string' && typeof (v as { template?: unknown }).template === 'string';
}

/** A type of the draft: its label, title (previewed live), number, and fields (nested ones too). */
export function DesignTypePage() {
  const { tenant = '', type: typeName = '' } = useParams();
  const draft = useDraft();
  const id = useId();
  useDocumentTitle(`Type ${typeName}`, tenant);
  const [selected, setSelected] = useState<string[] | null>(null);
  const [newField, setNewField] = useState('');
  const [kind, setKind] = useState<FieldKind>('string');
  const [error, setError] = useState<string | null>(null);
  const type = findType(draft.pkg, typeName);
  if (!type) {
    return (
      <>
        <p>
          <Link to={paths.design(tenant)}>← Types</Link>
        </p>
        <Alert>The draft has no type “{typeName}”.</Alert>
      </>
    );
  }
  const rows = flattenFields(type);
  const current = selected ? fieldAt(type, selected) : undefined;
  const selectedText = selected ? pathText(selected) : null;
  const setTypeKey = (key: 'label' | 'description' | 'title', value: string) => {
    const r = updateType(draft.pkg, typeName, { [key]: value || undefined });
    if (r.ok) draft.edit(r.pkg, `type-${key}:${typeName}`);
  };
  const number = isNumber(type.number) ? type.number : null;
  const title = typeof type.title === 'string' ? type.title : '';
  // The number: the field it is written to and its template; no field, no number.
  const setNumber = (patch: { field?: string; template?: string }) => {
    const next = { ...(number ?? { field: '', template: '' }), ...patch };
    const value = next.field === '' ? undefined : next;
    const r = updateType(draft.pkg, typeName, { number: value });
    if (r.ok) draft.edit(r.pkg, `type-number:${typeName}`);
  };
  const stringFields = Object.entries(type.fields ?? {})
    .filter(([, def]) => (def as FieldJson).type === 'string')
    .map(([name]) => name);

  return (
    <div className="designer">
      <p>
        <Link to={paths.design(tenant)}>← Types</Link>
      </p>
      <div className="designer-head">
        <h1>{type.label ?? type.name}</h1>
        <SaveStatus />
        {type.workflow ? <Link to={paths.workflow(tenant, type.name)}>Open the workflow designer</Link> : null}
      </div>
      <div className="designer-body">
        <div>
          <div className="row wrap top">
            <div className="field">
              <label htmlFor={`${id}-label`}>Type label</label>
              <input id={`${id}-label`} value={type.label ?? ''} onChange={(e) => { setTypeKey('label', e.target.value); }} />
            </div>
            <div className="field">
              <label htmlFor={`${id}-title`}>Title template</label>
              <input
                id={`${id}-title`}
                className="template"
                value={title}
                placeholder="{{ name }}"
                onChange={(e) => {
                  setTypeKey('title', e.target.value);
                }}
              />
              <TemplatePreview tenant={tenant} type={type} template={title} kind="title" label="Title preview" />
            </div>
          </div>
          <div className="row wrap top">
            <div className="field">
              <label htmlFor={`${id}-number-field`}>Number written to</label>
              <select
                id={`${id}-number-field`}
                value={number?.field ?? ''}
                onChange={(e) => {
                  setNumber({ field: e.target.value });
                }}
              >
                <option value="">no number</option>
                {stringFields.map((f) => (
                  <option key={f} value={f}>
                    {f}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor={`${id}-number`}>Number template</label>
              <input
                id={`${id}-number`}
                className="template"
                value={number?.template ?? ''}
                disabled={!number}
                placeholder="ORD-{{ year }}-{{ seq | pad(6) }}"
                onChange={(e) => {
                  setNumber({ template: e.target.value });
                }}
              />
              {number ? (
                <TemplatePreview tenant={tenant} type={type} template={number.template} kind="number" label="Number preview" />
              ) : null}
            </div>
          </div>
          <div className="field">
            <label htmlFor={`${id}-desc`}>Type description</label>
            <input id={`${id}-desc`} value={type.description ?? ''} onChange={(e) => { setTypeKey('description', e.target.value); }} />
          </div>
          <table className="types-table">
            <caption>Fields of {type.name}</caption>
            <thead>
              <tr>
                <th scope="col">Field</th>
                <th scope="col">Label</th>
                <th scope="col">Kind</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ path, def, depth }) => {
                const name = pathText(path);
                return (
                  <tr key={name} className={selectedText === name ? 'selected' : ''}>
                    <th scope="row" className={depth > 0 ? `nested depth-${String(Math.min(depth, 3))}` : undefined}>
                      <button
                        type="button"
                        className="link"
                        aria-label={`Edit field ${name}`}
                        onClick={() => {
                          setSelected(path);
                        }}
                      >
                        {depth > 0 ? `↳ ${path[path.length - 1] ?? ''}` : name}
                      </button>
                    </th>
                    <td>{def.label ?? ''}</td>
                    <td>{summary(def)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <div className="toolbar" role="toolbar" aria-label="Fields">
            <label htmlFor={`${id}-new`}>New field</label>
            <input id={`${id}-new`} value={newField} onChange={(e) => { setNewField(e.target.value); }} />
            <label htmlFor={`${id}-kind`}>of kind</label>
            <select id={`${id}-kind`} value={kind} onChange={(e) => { setKind(e.target.value as FieldKind); }}>
              {FIELD_KINDS.map((k) => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
            <button
              type="button"
              onClick={() => {
                const r = addField(draft.pkg, typeName, newField, kind);
                if (!r.ok) {
                  setError(r.error);
                  return;
                }
                setError(null);
                draft.edit(r.pkg);
                setSelected([newField]);
                setNewField('');
              }}
            >
              Add field
            </button>
          </div>
          {error ? <Alert>{error}</Alert> : null}
        </div>
        <aside className="side flow" aria-label="Selection">
          {selected && current ? (
            <FieldEditor
              key={selectedText}
              type={typeName}
              path={selected}
              field={current}
              onRenamed={setSelected}
              onSelect={setSelected}
              onRemoved={() => {
                setSelected(null);
              }}
            />
          ) : (
            <p className="muted">Select a field to edit it.</p>
          )}
        </aside>
      </div>
    </div>
  );
}
