import { useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { entityName } from '../../../lib/entityName';
import { referenceOptionsQuery, referenceSearchQuery } from '../api/entities';
import { fromLocalInput, specKeys, splitIn, toLocalInput, toggleIn, type FilterSpec } from '../lib/filters';
import { RefTitle } from './DataValue';

interface Props {
  tenant: string;
  specs: FilterSpec[];
  /** The filters set (URL parameter → value). */
  filters: Record<string, string>;
  set: (key: string, value: string | null) => void;
  clear: () => void;
  /** What a person reads for a state (its label). */
  stateLabel?: (state: string) => string;
}

/** The list's filters, one group per filterable field, shaped by its kind; every change is in the URL. */
export function FilterPanel({ tenant, specs, filters, set, clear, stateLabel }: Props) {
  const any = Object.keys(filters).length > 0;
  return (
    <aside className="filters" aria-label="Filters">
      <div className="row">
        <h2>Filters</h2>
        {any ? (
          <button type="button" className="secondary small" onClick={clear}>
            Clear filters
          </button>
        ) : null}
      </div>
      {specs.map((spec) => {
        const active = specKeys(spec).some((k) => k in filters);
        return (
          <details key={spec.field} open={active || spec.field === 'state'}>
            <summary>
              {spec.label}
              {active ? <span className="sr-only"> (filtered)</span> : null}
              {active ? <span aria-hidden="true"> •</span> : null}
            </summary>
            <fieldset className="filter">
              <legend className="sr-only">{spec.label}</legend>
              <Filter tenant={tenant} spec={spec} filters={filters} set={set} valueLabel={spec.field === 'state' ? stateLabel : undefined} />
            </fieldset>
          </details>
        );
      })}
    </aside>
  );
}

function Filter({
  tenant,
  spec,
  filters,
  set,
  valueLabel,
}: {
  tenant: string;
  spec: FilterSpec;
  filters: Record<string, string>;
  set: Props['set'];
  valueLabel?: (value: string) => string;
}) {
  switch (spec.kind) {
    case 'multi': {
      const key = `${spec.field}[in]`;
      const chosen = splitIn(filters[key]);
      return (
        <div className="checklist">
          {spec.values.map((v) => (
            <label key={v} className="check">
              <input
                type="checkbox"
                checked={chosen.includes(v)}
                onChange={(e) => {
                  set(key, toggleIn(filters[key], v, e.target.checked));
                }}
              />
              {valueLabel ? valueLabel(v) : v}
            </label>
          ))}
        </div>
      );
    }
    case 'reference':
      return <ReferenceFilter tenant={tenant} spec={spec} filters={filters} set={set} />;
    case 'range':
      return <RangeFilter spec={spec} filters={filters} set={set} />;
    case 'boolean': {
      const value = filters[spec.field] ?? '';
      return (
        <select
          aria-label={spec.label}
          value={value}
          onChange={(e) => {
            set(spec.field, e.target.value);
          }}
        >
          <option value="">Any</option>
          <option value="true">Yes</option>
          <option value="false">No</option>
        </select>
      );
    }
    case 'text':
      return <TextFilter spec={spec} filters={filters} set={set} />;
  }
}

/** A searchable picker of the referenced type's entities, by title; several may be chosen. */
function ReferenceFilter({ tenant, spec, filters, set }: { tenant: string; spec: FilterSpec; filters: Record<string, string>; set: Props['set'] }) {
  const [search, setSearch] = useState('');
  const options = useQuery(referenceOptionsQuery(tenant, spec.reference ?? ''));
  // The server's search when the type has searchable fields (it reaches past the first 200).
  const found = useQuery(referenceSearchQuery(tenant, spec.reference ?? '', search));
  const key = `${spec.field}[in]`;
  const chosen = splitIn(filters[key]);
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  const candidates = found.data ?? (options.data ?? []).filter((e) => words.every((w) => entityName(e).toLowerCase().includes(w)));
  const shown = candidates.filter((e) => !chosen.includes(e.id)).slice(0, 8);
  return (
    <div className="picker">
      {chosen.length > 0 ? (
        <ul className="chosen" aria-label={`${spec.label} chosen`}>
          {chosen.map((id) => (
            <li key={id}>
              <label className="check">
                <input
                  type="checkbox"
                  checked
                  onChange={() => {
                    set(key, toggleIn(filters[key], id, false));
                  }}
                />
                <RefTitle tenant={tenant} type={spec.reference ?? ''} id={id} />
              </label>
            </li>
          ))}
        </ul>
      ) : null}
      <input
        type="search"
        aria-label={`Find ${spec.label}`}
        placeholder="Find by title"
        value={search}
        onChange={(e) => {
          setSearch(e.target.value);
        }}
      />
      {options.isPending ? <p className="muted">Loading…</p> : null}
      <div className="checklist">
        {shown.map((e) => (
          <label key={e.id} className="check">
            <input
              type="checkbox"
              checked={false}
              onChange={() => {
                set(key, toggleIn(filters[key], e.id, true));
                setSearch('');
              }}
            />
            {entityName(e)}
          </label>
        ))}
      </div>
      {options.data && shown.length === 0 && search && !found.isFetching ? <p className="muted">No match.</p> : null}
    </div>
  );
}

/** From and to (inclusive), committed when a field is left or Enter is pressed. */
function RangeFilter({ spec, filters, set }: { spec: FilterSpec; filters: Record<string, string>; set: Props['set'] }) {
  const id = useId();
  const bounds = [
    { key: `${spec.field}[gte]`, label: 'From' },
    { key: `${spec.field}[lte]`, label: 'To' },
  ];
  const type = spec.format === 'number' ? 'number' : spec.format === 'date' ? 'date' : 'datetime-local';
  const shown = (v: string | undefined) => (spec.format === 'date-time' ? toLocalInput(v) : (v ?? ''));
  const sent = (v: string) => (spec.format === 'date-time' ? fromLocalInput(v) : v);
  return (
    <div className="range">
      {bounds.map((b) => (
        <div key={b.key} className="field">
          <label htmlFor={`${id}-${b.label}`}>
            {b.label}
            <span className="sr-only"> ({spec.label})</span>
          </label>
          <input
            id={`${id}-${b.label}`}
            key={filters[b.key] ?? ''}
            type={type}
            step={type === 'number' ? 'any' : undefined}
            defaultValue={shown(filters[b.key])}
            onBlur={(e) => {
              if ((sent(e.target.value) || null) !== (filters[b.key] ?? null)) set(b.key, sent(e.target.value));
            }}
            onKeyDown={(e) => {
              if (e.key === 'Enter') set(b.key, sent(e.currentTarget.value));
            }}
          />
        </div>
      ))}
    </div>
  );
}

function TextFilter({ spec, filters, set }: { spec: FilterSpec; filters: Record<string, string>; set: Props['set'] }) {
  const value = filters[spec.field] ?? '';
  return (
    <input
      key={value}
      type="text"
      aria-label={`${spec.label} equals`}
      placeholder="Equals"
      defaultValue={value}
      onBlur={(e) => {
        if (e.target.value !== value) set(spec.field, e.target.value);
      }}
      onKeyDown={(e) => {
        if (e.key === 'Enter') set(spec.field, e.currentTarget.value);
      }}
    />
  );
}
