import type { ErrorSchema } from '@rjsf/utils';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { ApiError, errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { createEntity } from '../api/entities';
import { typesQuery } from '../api/types';
import { createSchema, serverErrors, uiSchemaFor } from '../lib/forms';
import { SchemaForm } from './SchemaForm';

/** A new entity of a type: a form generated from its schema (generated fields left out). */
export function CreatePage() {
  const { tenant = '', type = '' } = useParams();
  const navigate = useNavigate();
  const client = useQueryClient();
  const types = useQuery(typesQuery(tenant));
  const info = types.data?.data.find((t) => t.name === type);
  const label = info?.label ?? type;
  useDocumentTitle(`New ${label}`, tenant);
  const schema = useMemo(() => createSchema(info?.schema), [info?.schema]);
  const uiSchema = useMemo(() => uiSchemaFor(info?.schema), [info?.schema]);
  const [data, setData] = useState<unknown>({});
  const [errors, setErrors] = useState<ErrorSchema>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    setBusy(true);
    setFailure(null);
    setErrors({});
    try {
      const created = await createEntity(tenant, type, data);
      await client.invalidateQueries({ queryKey: ['t', tenant, 'list', type] });
      await client.invalidateQueries({ queryKey: ['t', tenant, 'inbox'] });
      void navigate(paths.entity(tenant, type, created.id));
    } catch (e) {
      if (e instanceof ApiError && e.code === 'VALIDATION_FAILED') {
        const placed = serverErrors(e.details, '/data');
        setErrors(placed.schema);
        setFailure(['Some fields need attention.', ...placed.other].join(' '));
      } else {
        setFailure(errorMessage(e));
      }
    } finally {
      setBusy(false);
    }
  };

  if (types.data && !info) return <Alert>There is no type “{type}” you may view.</Alert>;
  return (
    <>
      <p>
        <Link to={paths.list(tenant, type)}>← {label}</Link>
      </p>
      <h1>New {label}</h1>
      {types.isPending && <Loading />}
      {types.isError && <Alert>{errorMessage(types.error)}</Alert>}
      {failure ? <Alert>{failure}</Alert> : null}
      {info && (
        <SchemaForm
          idPrefix="new"
          schema={schema}
          uiSchema={uiSchema}
          formData={data}
          onChange={setData}
          onSubmit={() => void submit()}
          errors={errors}
          disabled={busy}
        >
          <button type="submit" disabled={busy}>
            Create {label}
          </button>
        </SchemaForm>
      )}
    </>
  );
}
