import { Link, useParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { useTypes } from '../api/types';
import { workflowStates, workflowTransitions } from '../lib/workflow';

/**
 * What a type is: its description, its states and the transitions between them with the roles
 * that may fire each, and the way to its entities.
 */
export function TypePage() {
  const { tenant = '', type = '' } = useParams();
  const types = useTypes(tenant);
  const info = types.data?.data.find((t) => t.name === type);
  const states = workflowStates(info?.workflow);
  const transitions = workflowTransitions(info?.workflow);
  const stateLabel = (name: string) => states.find((st) => st.name === name)?.label ?? name;
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
          <p>
            <Link to={paths.list(tenant, type)}>Entities of {info.label ?? info.name}</Link>
            {info.actions?.includes('create') ? (
              <>
                {' · '}
                <Link to={paths.create(tenant, type)}>New {info.label ?? info.name}</Link>
              </>
            ) : null}
          </p>
          {states.length > 0 && (
            <>
              <h2>States</h2>
              <ul className="states" aria-label="States">
                {states.map((st) => (
                  <li key={st.name}>
                    {st.label} <span className="muted">({st.kind})</span>
                  </li>
                ))}
              </ul>
            </>
          )}
          {transitions.length > 0 && (
            <>
              <h2>Transitions</h2>
              <ul className="states" aria-label="Transitions">
                {transitions.map((t) => (
                  <li key={t.name}>
                    {t.label}{' '}
                    <span className="muted">
                      ({t.create ? 'creates' : t.from.map(stateLabel).join(', ')} → {stateLabel(t.to)}; {t.roles.join(', ')})
                    </span>
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
