import { Link, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useTypes } from '../api/types';

/** The tenant's home: the types this user may view. */
export function HomePage() {
  const tenant = useParams().tenant ?? '';
  const types = useTypes(tenant);
  useDocumentTitle('Entity types', tenant);
  return (
    <>
      <h1>Entity types</h1>
      {types.isPending && <Loading />}
      {types.isError && <Alert>{errorMessage(types.error)}</Alert>}
      {types.data && (
        <>
          <p className="muted">
            {types.data.data.length} types you may view, in configuration version {types.data.version}.
          </p>
          <ul className="type-list" aria-label="Entity types">
            {types.data.data.map((t) => (
              <li key={t.name}>
                <Link to={paths.list(tenant, t.name)}>{t.label ?? t.name}</Link>
                {t.description ? <span className="muted"> — {t.description}</span> : null}
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}
