import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { Alert } from '../../../components/Alert';
import { Loading } from '../../../components/Loading';
import { entityName } from '../../../lib/entityName';
import { ApiError, errorMessage } from '../../../lib/envelope';
import { useDocumentTitle } from '../../../lib/useDocumentTitle';
import { workflowLabels } from '../../../lib/workflowLabels';
import { paths } from '../../../lib/urls';
import { listQuery, meQuery, tenantDocQuery } from '../api/entities';
import { exportCsv, saveFile } from '../api/exportCsv';
import { typesQuery } from '../api/types';
import { cell, columns, groupDigits, nextSort, readListQuery, sortKeys, titleOnOneLine } from '../lib/columns';
import { bulkFilter, clearFilters, filterSpecs, readFilters, withFilter } from '../lib/filters';
import { BulkPanel, type WorkflowTransition } from './BulkPanel';
import { RefLink, UserName } from './DataValue';
import { FilterPanel } from './FilterPanel';
import { When } from '../../../components/When';

/**
 * A type's entities: filters by field kind, search, sort by a column, pages by cursor (all of it
 * in the URL); the CSV of the filtered list; a transition on the selected rows or on all matching.
 */
/** A date or an instant as the API writes it (`2026-12-03`, `2026-12-03T08:00:00Z`). */
function isDateText(v: unknown): boolean {
  return typeof v === 'string' && /^\d{4}-\d{2}-\d{2}/.test(v);
}

export function ListPage() {
  const { tenant = '', type = '' } = useParams();
  const [params, setParams] = useSearchParams();
  const id = useId();
  const { q, sort, cursor } = readListQuery(params);
  const [search, setSearch] = useState(q);
  const types = useQuery(typesQuery(tenant));
  const doc = useQuery(tenantDocQuery(tenant));
  const me = useQuery(meQuery());
  const client = useQueryClient();
  const info = types.data?.data.find((t) => t.name === type);
  const specs = filterSpecs(doc.data, tenant, type, info?.schema);
  const filters = readFilters(params, specs);
  // Filters wait for the document that names them; the previous page (of this type) stays while the next loads.
  const list = useQuery({
    ...listQuery(tenant, type, { q, sort, cursor, filters }),
    enabled: doc.isSuccess || doc.isError,
    placeholderData: (previous, query) => (query?.queryKey[3] === type ? previous : undefined),
  });
  useDocumentTitle(info?.label ?? type, tenant);
  const sortable = sortKeys(doc.data, tenant, type);
  const cols = columns(info?.schema, sortable, 4, list.data?.data ?? []);
  const label = info?.label ?? type;
  // What the caller's roles may do with the type (the server's answer): no button is offered
  // that the server would refuse.
  const may = (action: 'create' | 'export') => info?.actions?.includes(action) ?? false;
  // The selection: rows of this page, or every entity matching the filters.
  const filterKey = JSON.stringify([filters, q]);
  const [selection, setSelection] = useState<{ key: string; ids: string[]; all: boolean }>({ key: filterKey, ids: [], all: false });
  const chosen = selection.key === filterKey ? selection : { key: filterKey, ids: [], all: false };
  const select = (ids: string[], all = false) => {
    setSelection({ key: filterKey, ids, all });
  };
  const pageIds = list.data?.data.map((e) => e.id) ?? [];
  const allOnPage = pageIds.length > 0 && pageIds.every((i) => chosen.ids.includes(i));
  const [exporting, setExporting] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
  const download = async () => {
    setExporting({ busy: true, error: null });
    try {
      saveFile(await exportCsv(tenant, type, { ...filters, ...(q ? { q } : {}), sort }), `${type}.csv`);
      setExporting({ busy: false, error: null });
    } catch (e) {
      const error =
        e instanceof ApiError && e.status === 403
          ? `You may not export ${label}: exporting needs the export permission, which your roles do not have.`
          : errorMessage(e);
      setExporting({ busy: false, error });
    }
  };
  const workflow = info?.workflow as { transitions?: WorkflowTransition[] } | undefined;
  const labels = workflowLabels(workflow);
  const set = (next: Record<string, string | null>) => {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(next)) {
      if (v === null || v === '') p.delete(k);
      else p.set(k, v);
    }
    setParams(p);
  };
  const sortButton = (field: string, label: string, numeric = false) => {
    const active = sort === field || sort === `-${field}`;
    const direction = sort === field ? 'ascending' : sort === `-${field}` ? 'descending' : 'none';
    return (
      <th key={field} scope="col" aria-sort={direction} className={numeric ? 'num' : undefined}>
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
    <div className="list-page">
      <div className="designer-head">
        <h1>{label}</h1>
        <Link to={paths.type(tenant, type)}>About {label}</Link>
        {may('create') ? <Link to={paths.create(tenant, type)}>New {label}</Link> : null}
        {may('export') ? (
          <button type="button" className="secondary small" disabled={exporting.busy} onClick={() => void download()}>
            {exporting.busy ? 'Exporting…' : 'Export CSV'}
          </button>
        ) : null}
      </div>
      {exporting.error ? <Alert>{exporting.error}</Alert> : null}
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
            {list.data.total_exact === false ? `more than ${String(list.data.total)}` : list.data.total}{' '}
            {list.data.total === 1 ? 'entity' : 'entities'}
            {Object.keys(filters).length ? ' match the filters' : ''}
          </span>
        ) : null}
      </form>
      <div className="list-body">
        <FilterPanel
          tenant={tenant}
          specs={specs}
          stateLabel={labels.state}
          filters={filters}
          set={(key, value) => {
            setParams(withFilter(params, key, value));
          }}
          clear={() => {
            setParams(clearFilters(params, specs));
          }}
        />
        <div className="list-main">
          {list.isPending && <Loading />}
          {list.isError && <Alert>{errorMessage(list.error)}</Alert>}
          {list.data && (chosen.ids.length > 0 || chosen.all) ? (
            <BulkPanel
              tenant={tenant}
              type={type}
              transitions={workflow?.transitions ?? []}
              labels={labels}
              roles={me.data?.roles ?? []}
              target={chosen.all ? { filter: bulkFilter(filters, q) } : { ids: chosen.ids }}
              count={chosen.all ? (list.data.total ?? 0) : chosen.ids.length}
              what={
                chosen.all
                  ? `all ${list.data.total_exact === false ? 'more than ' : ''}${String(list.data.total ?? 0)} matching`
                  : `${String(chosen.ids.length)} selected`
              }
              onDone={() => {
                void client.invalidateQueries({ queryKey: ['t', tenant, 'list', type] });
                void client.invalidateQueries({ queryKey: ['t', tenant, 'inbox'] });
                void client.invalidateQueries({ queryKey: ['t', tenant, 'entity', type] });
              }}
            />
          ) : null}
          {list.data && allOnPage && !chosen.all ? (
            <p className="row">
              All {pageIds.length} on this page are selected.
              <button
                type="button"
                className="secondary small"
                onClick={() => {
                  select([], true);
                }}
              >
                Select all {list.data.total_exact === false ? 'more than ' : ''}
                {list.data.total} matching
              </button>
            </p>
          ) : null}
          {chosen.all ? (
            <p className="row">
              All {list.data?.total} matching are selected.
              <button
                type="button"
                className="secondary small"
                onClick={() => {
                  select([]);
                }}
              >
                Clear selection
              </button>
            </p>
          ) : null}
          {list.data && (
            <div className="table-scroll">
              <table className="types-table list">
                <caption className="sr-only">{label}</caption>
                <thead>
                  <tr>
                    <td>
                      <input
                        type="checkbox"
                        aria-label="Select all on this page"
                        checked={chosen.all || allOnPage}
                        disabled={chosen.all}
                        onChange={(e) => {
                          select(e.target.checked ? [...new Set([...chosen.ids, ...pageIds])] : chosen.ids.filter((i) => !pageIds.includes(i)));
                        }}
                      />
                    </td>
                    <th scope="col">Title</th>
                    <th scope="col">State</th>
                    {cols.map((c) =>
                      c.sortable ? (
                        sortButton(c.field, c.label, c.numeric)
                      ) : (
                        <th key={c.field} scope="col" className={c.numeric ? 'num' : undefined}>
                          {c.label}
                        </th>
                      ),
                    )}
                    {sortButton('created_at', 'Created')}
                  </tr>
                </thead>
                <tbody>
                  {list.data.data.map((e) => (
                    <tr key={e.id}>
                      <td>
                        <input
                          type="checkbox"
                          aria-label={`Select ${entityName(e)}`}
                          checked={chosen.all || chosen.ids.includes(e.id)}
                          disabled={chosen.all}
                          onChange={(ev) => {
                            select(ev.target.checked ? [...chosen.ids, e.id] : chosen.ids.filter((i) => i !== e.id));
                          }}
                        />
                      </td>
                      <th scope="row">
                        <Link
                          to={paths.entity(tenant, type, e.id)}
                          className={titleOnOneLine(entityName(e)) ? 'one-line' : 'clamp'}
                          title={titleOnOneLine(entityName(e)) ? undefined : entityName(e)}
                        >
                          {entityName(e)}
                        </Link>
                      </th>
                      <td>
                        <span className={`badge state-${e.state.toLowerCase()}`} title={e.state}>
                          {labels.state(e.state)}
                        </span>
                      </td>
                      {cols.map((c) => (
                        <td key={c.field} className={c.numeric ? 'num' : isDateText(e.data[c.field]) ? 'date' : undefined}>
                          {c.reference && typeof e.data[c.field] === 'string' ? (
                            <RefLink tenant={tenant} type={c.reference} id={String(e.data[c.field])} clamp />
                          ) : c.user && typeof e.data[c.field] === 'string' ? (
                            <UserName id={String(e.data[c.field])} users={e.users} />
                          ) : c.decimal && typeof e.data[c.field] === 'string' ? (
                            groupDigits(String(e.data[c.field]))
                          ) : (
                            cell(e.data[c.field])
                          )}
                        </td>
                      ))}
                      <td>
                        <When iso={e.created_at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
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
        </div>
      </div>
    </div>
  );
}
