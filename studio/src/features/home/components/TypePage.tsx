import { Link, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useTypes } from '../api/types';
import { workflowStates } from '../lib/workflow';

/** A type's placeholder page: its name and states (its lists and forms come with the console). */
export function TypePage() {
  const { tenant = '', type = '' } = useParams();
  const types = useTypes(tenant);
  const info = types.data?.data.find((t) => t.name === type);
  const states = workflowStates(info?.workflow);
  useDocumentTitle(info?.label ?? type, tenant);
  return (
    <>
      <p>
        <Link to={paths.home(tenant)}>← Entity types</Link>
      </p>
      {types.isPending && <Loading />}
      {types.isError && <Alert>{errorMessage(types.error)}</Alert>}
      {types.data && !info && <Alert>There is no type “{type}” you may view.</Alert>}
      {info && (
        <>
          <h1>{info.label ?? info.name}</h1>
          {info.description ? <p>{info.description}</p> : null}
          <p className="muted">
            Its states, as the published configuration declares them. The list of its entities, their forms and
            the workflow designer are not in the studio yet.
          </p>
          {states.length > 0 && (
            <>
              <h2>States</h2>
              <ul className="states">
                {states.map((st) => (
                  <li key={st.name}>
                    {st.label} <span className="muted">({st.kind})</span>
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      )}
    </>
  );
}
