import { useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { entityName } from '../../../lib/entityName';
import { errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { paths } from '../../../lib/urls';
import { listQuery, tenantDocQuery } from '../api/entities';
import { typesQuery } from '../api/types';
import { cell, columns, nextSort, readListQuery, sortKeys } from '../lib/columns';
import { RefLink, UserName } from './DataValue';

/** A type's entities: search, sort by a column, pages by cursor; all of it in the URL. */
export function ListPage() {
  const { tenant = '', type = '' } = useParams();
  const [params, setParams] = useSearchParams();
  const id = useId();
  const { q, sort, cursor } = readListQuery(params);
  const [search, setSearch] = useState(q);
  const types = useQuery(typesQuery(tenant));
  const doc = useQuery(tenantDocQuery(tenant));
  const list = useQuery(listQuery(tenant, type, q, sort, cursor));
  const info = types.data?.data.find((t) => t.name === type);
  useDocumentTitle(info?.label ?? type, tenant);
  const sortable = sortKeys(doc.data, tenant, type);
  const cols = columns(info?.schema, sortable);
  const set = (next: Record<string, string | null>) => {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(next)) {
      if (v === null || v === '') p.delete(k);
      else p.set(k, v);
    }
    setParams(p);
  };
  const sortButton = (field: string, label: string) => {
    const active = sort === field || sort === `-${field}`;
    const direction = sort === field ? 'ascending' : sort === `-${field}` ? 'descending' : 'none';
    return (
      <th scope="col" aria-sort={direction}>
        <button
          type="button"
          className="link"
          onClick={() => {
            set({ sort: nextSort(sort, field), cursor: null });
          }}
        >
          {label}
          {active ? (direction === 'ascending' ? ' ▲' : ' ▼') : ''}
        </button>
      </th>
    );
  };

  if (types.data && !info) return <Alert>There is no type “{type}” you may view.</Alert>;
  return (
    <>
      <div className="designer-head">
        <h1>{info?.label ?? type}</h1>
        <Link to={paths.type(tenant, type)}>About {info?.label ?? type}</Link>
        <Link to={paths.create(tenant, type)}>New {info?.label ?? type}</Link>
      </div>
      <form
        className="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          set({ q: search, cursor: null });
        }}
      >
        <label htmlFor={`${id}-q`}>Search</label>
        <input
          id={`${id}-q`}
          type="search"
          value={search}
          onChange={(e) => {
            setSearch(e.target.value);
          }}
        />
        <button type="submit">Search</button>
        {list.data?.total !== undefined ? (
          <span className="muted" role="status">
            {list.data.total} {list.data.total === 1 ? 'entity' : 'entities'}
          </span>
        ) : null}
      </form>
      {list.isPending && <Loading />}
      {list.isError && <Alert>{errorMessage(list.error)}</Alert>}
      {list.data && (
        <table className="types-table list">
          <caption className="sr-only">{info?.label ?? type}</caption>
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col">State</th>
              {cols.map((c) => (c.sortable ? sortButton(c.field, c.label) : <th key={c.field} scope="col">{c.label}</th>))}
              {sortButton('created_at', 'Created')}
            </tr>
          </thead>
          <tbody>
            {list.data.data.map((e) => (
              <tr key={e.id}>
                <th scope="row">
                  <Link to={paths.entity(tenant, type, e.id)}>{entityName(e)}</Link>
                </th>
                <td>
                  <span className={`badge state-${e.state.toLowerCase()}`}>{e.state}</span>
                </td>
                {cols.map((c) => (
                  <td key={c.field}>
                    {c.reference && typeof e.data[c.field] === 'string' ? (
                      <RefLink tenant={tenant} type={c.reference} id={String(e.data[c.field])} />
                    ) : c.user && typeof e.data[c.field] === 'string' ? (
                      <UserName id={String(e.data[c.field])} users={e.users} />
                    ) : (
                      cell(e.data[c.field])
                    )}
                  </td>
                ))}
                <td>{new Date(e.created_at).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav className="row" aria-label="Pages">
        {cursor ? (
          <button
            type="button"
            className="secondary"
            onClick={() => {
              set({ cursor: null });
            }}
          >
            First page
          </button>
        ) : null}
        {list.data?.next_cursor ? (
          <button
            type="button"
            className="secondary"
            onClick={() => {
              set({ cursor: list.data.next_cursor });
            }}
          >
            Next page
          </button>
        ) : null}
      </nav>
    </>
  );
}
