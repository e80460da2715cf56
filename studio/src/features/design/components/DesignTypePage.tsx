import { Link, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useDraft } from '../hooks/draftContext';
import { findType } from '../lib/model';

function describe(def: unknown): string {
  if (typeof def !== 'object' || def === null) return '';
  const d = def as Record<string, unknown>;
  const parts = [typeof d.type === 'string' ? d.type : 'object'];
  if (typeof d.to === 'string') parts.push(`→ ${d.to}`);
  if (d.required === true) parts.push('required');
  if (d.generated === true) parts.push('generated');
  if (Array.isArray(d.values)) parts.push(`one of ${d.values.map(String).join(', ')}`);
  return parts.join(', ');
}

/** A type of the draft: its fields (read here; edited in the package files for now). */
export function DesignTypePage() {
  const { tenant = '', type: typeName = '' } = useParams();
  const draft = useDraft();
  useDocumentTitle(`Type ${typeName}`, tenant);
  const type = findType(draft.pkg, typeName);
  if (!type) return <Alert>The draft has no type “{typeName}”.</Alert>;
  const fields = Object.entries(type.fields ?? {});
  return (
    <>
      <p>
        <Link to={paths.design(tenant)}>← Types</Link>
      </p>
      <h1>{type.label ?? type.name}</h1>
      {type.description ? <p>{type.description}</p> : null}
      {type.workflow ? (
        <p>
          <Link to={paths.workflow(tenant, type.name)}>Open the workflow designer</Link>
        </p>
      ) : null}
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
            <tr key={name}>
              <th scope="row">{name}</th>
              <td>{typeof def === 'object' && def !== null && typeof (def as { label?: unknown }).label === 'string' ? (def as { label: string }).label : ''}</td>
              <td>{describe(def)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
