import { useQuery } from '@tanstack/react-query';
import { useId } from 'react';
import { Link } from 'react-router';
import { entityName } from '../../../lib/entityName';
import { errorMessage } from '../../../lib/envelope';
import { humanize } from '../../../lib/humanize';
import { paths } from '../../../lib/urls';
import { listQuery } from '../api/entities';
import { relatedQuery, type Referrer } from '../lib/related';

const SHOWN = 10;

/** The entities that refer to this one, per referring field: the first few, and a link to all. */
export function Related({ tenant, id, referrers }: { tenant: string; id: string; referrers: Referrer[] }) {
  const uid = useId();
  if (referrers.length === 0) return null;
  return (
    <section className="related" aria-labelledby={`${uid}-h`}>
      <h2 id={`${uid}-h`}>Related</h2>
      {referrers.map((r) => (
        <RelatedGroup key={`${r.type}.${r.field}`} tenant={tenant} id={id} r={r} />
      ))}
    </section>
  );
}

function RelatedGroup({ tenant, id, r }: { tenant: string; id: string; r: Referrer }) {
  const uid = useId();
  const list = useQuery(listQuery(tenant, r.type, { q: '', sort: '-created_at', cursor: null, filters: { [`${r.field}[in]`]: id }, limit: SHOWN }));
  const total = list.data?.total ?? 0;
  return (
    <div>
      <h3 id={`${uid}-h`}>
        {r.typeLabel} <span className="muted">by {r.fieldLabel}</span>
        {list.data ? <span className="count">{total}</span> : null}
      </h3>
      {list.isError ? <p className="muted">{errorMessage(list.error)}</p> : null}
      {list.data && total === 0 ? <p className="muted">None.</p> : null}
      {list.data && total > 0 ? (
        <ul aria-labelledby={`${uid}-h`}>
          {list.data.data.map((e) => (
            <li key={e.id}>
              <Link to={paths.entity(tenant, r.type, e.id)}>{entityName(e)}</Link>{' '}
              <span className={`badge state-${e.state.toLowerCase()}`} title={e.state}>
                {humanize(e.state)}
              </span>
            </li>
          ))}
          {total > list.data.data.length ? (
            <li>
              <Link to={`${paths.list(tenant, r.type)}?${relatedQuery(r, id)}`}>
                All {total} {r.typeLabel}
              </Link>
            </li>
          ) : null}
        </ul>
      ) : null}
    </div>
  );
}
