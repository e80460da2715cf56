import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { entityName } from '../../../lib/entityName';
import { humanize } from '../../../lib/humanize';
import { inSchemaOrder } from '../../../lib/schemaOrder';
import { paths } from '../../../lib/urls';
import { entityQuery } from '../api/entities';
import { isNumeric, valueText } from '../lib/columns';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The label of a property of `schema` (its `title`, else its name as a label). */
function labelOf(schema: unknown, name: string): string {
  const p = isObject(schema) && isObject(schema.properties) ? schema.properties[name] : undefined;
  return isObject(p) && typeof p.title === 'string' ? p.title : humanize(name);
}

/** A link to a referenced entity, by its title once read (its id until then, or if it is gone). */
export function RefLink({ tenant, type, id, clamp = false }: { tenant: string; type: string; id: string; clamp?: boolean }) {
  const e = useQuery({ ...entityQuery(tenant, type, id), retry: false });
  const name = e.data ? entityName(e.data) : id;
  // In a list's narrow column, three lines of it at most and the whole on hover.
  return (
    <Link to={paths.entity(tenant, type, id)} className={clamp ? 'clamp' : undefined} title={clamp ? name : undefined}>
      {name}
    </Link>
  );
}

/** The users an entity's user fields name (its `users`): id → name and e-mail. */
export type UserNames = Record<string, { name: string; email: string }>;

/** A user field's value: the user's name (their e-mail on hover), else their e-mail, else the id. */
export function UserName({ id, users }: { id: string; users: UserNames | undefined }) {
  const u = users?.[id];
  if (!u) return <span className="value">{id}</span>;
  return (
    <span className="value" title={u.email}>
      {u.name || u.email}
    </span>
  );
}

/** A referenced entity's title as text (its id until read, or if it is gone). */
export function RefTitle({ tenant, type, id }: { tenant: string; type: string; id: string }) {
  const e = useQuery({ ...entityQuery(tenant, type, id), retry: false });
  return <>{e.data ? entityName(e.data) : id}</>;
}

/**
 * A value of an entity's data as its schema says: a reference as a link by title, a user by
 * name, an object as its fields, an array of objects as a table (order lines), anything else as
 * text.
 */
export function DataValue({
  tenant,
  schema,
  value,
  users,
}: {
  tenant: string;
  schema: unknown;
  value: unknown;
  users?: UserNames;
}) {
  const s = isObject(schema) ? schema : {};
  if (typeof s['x-reference'] === 'string' && typeof value === 'string') {
    return <RefLink tenant={tenant} type={s['x-reference']} id={value} />;
  }
  if (isObject(s['x-user']) && typeof value === 'string') {
    return <UserName id={value} users={users} />;
  }
  // A list of users (`items: { type: user }`): their names.
  if (Array.isArray(value) && isObject(s.items) && isObject(s.items['x-user'])) {
    const items = s.items;
    return (
      <span className="value">
        {(value as unknown[]).map((v: unknown, i) => (
          <span key={i}>
            {i > 0 ? ', ' : null}
            <DataValue tenant={tenant} schema={items} value={v} users={users} />
          </span>
        ))}
      </span>
    );
  }
  if (isObject(value)) {
    return (
      <dl className="data nested">
        {inSchemaOrder(value, s.properties).map(([k, v]) => (
          <div key={k}>
            <dt>{labelOf(s, k)}</dt>
            <dd>
              <DataValue
                tenant={tenant}
                schema={isObject(s.properties) ? s.properties[k] : undefined}
                value={v}
                users={users}
              />
            </dd>
          </div>
        ))}
      </dl>
    );
  }
  if (Array.isArray(value) && value.length > 0 && value.every(isObject)) {
    const items = isObject(s.items) ? s.items : {};
    // The columns in the schema's order (product, quantity, price, total), then any others.
    const present = Object.fromEntries(value.flatMap((row) => Object.keys(row)).map((k) => [k, true]));
    const columns = inSchemaOrder(present, items.properties).map(([k]) => k);
    const props = isObject(items.properties) ? items.properties : {};
    // Numbers (quantities, prices, totals) right-aligned, so their digits line up.
    const num = (c: string) => (isNumeric(props[c]) ? 'num' : undefined);
    return (
      <div className="data-value-lines">
        <table className="lines">
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c} scope="col" className={num(c)}>
                  {labelOf(items, c)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {value.map((row, i) => (
              <tr key={i}>
                {columns.map((c) => (
                  <td key={c} className={num(c)}>
                    <DataValue
                      tenant={tenant}
                      schema={props[c]}
                      value={row[c]}
                      users={users}
                    />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    );
  }
  return <span className="value">{valueText(s, value)}</span>;
}
