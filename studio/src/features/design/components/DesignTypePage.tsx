import { useId, useState } from 'react';
import { Link, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useDraft } from '../hooks/draftContext';
import { addField, FIELD_KINDS, updateType, type FieldJson, type FieldKind } from '../lib/fields';
import { findType } from '../lib/model';
import { FieldEditor } from './FieldEditor';
import { SaveStatus } from './SaveStatus';

function summary(def: FieldJson): string {
  const parts: string[] = [def.type];
  if (def.to) parts.push(`→ ${def.to}`);
  if (def.required) parts.push('required');
  if (def.generated) parts.push('generated');
  if (def.values) parts.push(`one of ${def.values.join(', ')}`);
  return parts.join(', ');
}

/** A type of the draft: its label, title, and fields. */
export function DesignTypePage() {
  const { tenant = '', type: typeName = '' } = useParams();
  const draft = useDraft();
  const id = useId();
  useDocumentTitle(`Type ${typeName}`, tenant);
  const [selected, setSelected] = useState<string | null>(null);
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
  const fields = Object.entries(type.fields ?? {}) as [string, FieldJson][];
  const current = selected ? (type.fields?.[selected] as FieldJson | undefined) : undefined;
  const setTypeKey = (key: 'label' | 'description' | 'title', value: string) => {
    const r = updateType(draft.pkg, typeName, { [key]: value || undefined });
    if (r.ok) draft.edit(r.pkg, `type-${key}:${typeName}`);
  };

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
          <div className="row wrap">
            <div className="field">
              <label htmlFor={`${id}-label`}>Type label</label>
              <input id={`${id}-label`} value={type.label ?? ''} onChange={(e) => { setTypeKey('label', e.target.value); }} />
            </div>
            <div className="field">
              <label htmlFor={`${id}-title`}>Title template</label>
              <input
                id={`${id}-title`}
                value={typeof type.title === 'string' ? type.title : ''}
                placeholder="{{ name }}"
                onChange={(e) => {
                  setTypeKey('title', e.target.value);
                }}
              />
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
              {fields.map(([name, def]) => (
                <tr key={name} className={selected === name ? 'selected' : ''}>
                  <th scope="row">
                    <button
                      type="button"
                      className="link"
                      aria-label={`Edit field ${name}`}
                      onClick={() => {
                        setSelected(name);
                      }}
                    >
                      {name}
                    </button>
                  </th>
                  <td>{def.label ?? ''}</td>
                  <td>{summary(def)}</td>
                </tr>
              ))}
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
                setSelected(newField);
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
              key={selected}
              type={typeName}
              name={selected}
              field={current}
              onRenamed={setSelected}
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
