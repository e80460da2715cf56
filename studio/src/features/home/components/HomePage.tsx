import { useQuery } from '@tanstack/react-query';
import { Link, useParams, useSearchParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { entityName } from '../../../lib/entityName';
import { errorMessage } from '../../../lib/envelope';
import { workflowLabels } from '../../../lib/workflowLabels';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { inboxQuery } from '../api/inbox';
import { useTypes } from '../api/types';
import { countsByType, sections } from '../lib/inbox';
import { When } from '../../../components/When';

/**
 * The tenant's home: the inbox (what this user can do now, grouped by type and transition,
 * oldest first) beside the types this user may view, each with how many of its entities wait.
 */
export function HomePage() {
  const tenant = useParams().tenant ?? '';
  const [params, setParams] = useSearchParams();
  const cursor = params.get('cursor');
  const types = useTypes(tenant);
  const inbox = useQuery(inboxQuery(tenant, cursor));
  useDocumentTitle('Inbox', tenant);
  const label = (type: string) => types.data?.data.find((t) => t.name === type)?.label ?? type;
  const labels = (type: string) => workflowLabels(types.data?.data.find((t) => t.name === type)?.workflow);
  const more = Boolean(inbox.data?.next_cursor);
  const counts = inbox.data ? countsByType(inbox.data.data, more) : new Map<string, string>();
  const groups = inbox.data ? sections(inbox.data.data, inbox.data.groups) : [];
  return (
    <div className="home">
      <section className="inbox" aria-labelledby="inbox-heading">
        <h1 id="inbox-heading">Inbox</h1>
        {inbox.isPending && <Loading />}
        {inbox.isError && <Alert>{errorMessage(inbox.error)}</Alert>}
        {inbox.data && (
          <>
            <p className="muted" role="status">
              {inbox.data.data.length === 0
                ? 'Nothing needs you now.'
                : `${String(inbox.data.data.length)}${more ? '+' : ''} ${inbox.data.data.length === 1 && !more ? 'entity needs' : 'entities need'} you, oldest first.`}
            </p>
            {groups.map((g) => (
              <section key={`${g.type}/${g.transition}`} className="inbox-group" aria-label={`${label(g.type)}: ${g.title}`}>
                <h2>
                  {label(g.type)}: {g.title} <span className="count">{g.entities.length}</span>
                </h2>
                <ul>
                  {g.entities.map((e) => (
                    <li key={e.id}>
                      <Link to={paths.entity(tenant, e.type, e.id)}>{entityName(e)}</Link>{' '}
                      <span className="badge" title={e.state}>
                        {labels(e.type).state(e.state)}
                      </span>{' '}
                      <span className="muted">
                        since <When iso={e.created_at} />
                      </span>
                    </li>
                  ))}
                </ul>
              </section>
            ))}
            {(cursor || more) && (
              <div className="row">
                {cursor && (
                  <button type="button" className="secondary" onClick={() => {
                      setParams({});
                    }}>
                    First page
                  </button>
                )}
                {inbox.data.next_cursor && (
                  <button
                    type="button"
                    className="secondary"
                    onClick={() => {
                      setParams({ cursor: inbox.data.next_cursor ?? '' });
                    }}
                  >
                    More
                  </button>
                )}
              </div>
            )}
          </>
        )}
      </section>
      <nav className="types-nav" aria-labelledby="types-heading">
        <h2 id="types-heading">Entity types</h2>
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
                  {counts.has(t.name) ? (
                    <>
                      {' '}
                      <span className="count">
                        {counts.get(t.name)}
                        <span className="sr-only"> waiting for you</span>
                      </span>
                    </>
                  ) : null}
                  {t.description ? <span className="muted"> — {t.description}</span> : null}
                </li>
              ))}
            </ul>
          </>
        )}
      </nav>
    </div>
  );
}
