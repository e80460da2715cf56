// A list's filters, by field kind, derived from the tenant's OpenAPI document (the list
// operation's parameters: which fields are filterable, with which operators and value kinds) and
// the type's JSON Schema (labels, `x-reference`). They live in the URL in the API's own syntax
// (`state[in]=A,B`, `total[gte]=10`, `customer_id[in]=…`), so a shared link is the same list and
// the list's query is the URL's filter parameters as they are.

import { humanize } from '../../../lib/humanize';

export type FilterKind = 'multi' | 'range' | 'reference' | 'boolean' | 'text';

/** How a range's bounds are typed: a number, a date (`YYYY-MM-DD`) or a date-time. */
export type RangeFormat = 'number' | 'date' | 'date-time';

export interface FilterSpec {
  field: string;
  label: string;
  kind: FilterKind;
  /** For `multi`: the values (an enum's, or the workflow's states). */
  values: string[];
  /** For `range`. */
  format: RangeFormat | null;
  /** For `reference`: the type it points to. */
  reference: string | null;
}

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parameters of a list that are not filters. */
const NOT_FILTERS = new Set(['q', 'sort', 'limit', 'cursor', 'total', 'id']);
const COLUMN_LABELS: Record<string, string> = { state: 'State', created_at: 'Created', updated_at: 'Updated' };

function listParameters(doc: unknown, tenant: string, type: string): Map<string, Json> {
  const out = new Map<string, Json>();
  if (!isRecord(doc) || !isRecord(doc.paths)) return out;
  const op = doc.paths[`/api/v1/t/${tenant}/entities/${type}`];
  const get = isRecord(op) ? op.get : undefined;
  const params = isRecord(get) && Array.isArray(get.parameters) ? (get.parameters as unknown[]) : [];
  for (const p of params) {
    if (isRecord(p) && typeof p.name === 'string') out.set(p.name, isRecord(p.schema) ? p.schema : {});
  }
  return out;
}

/**
 * The filters a list of `type` offers: `state` and the enums as multi-selects (`[in]`), numbers
 * (decimals too), dates and date-times as ranges (`[gte]`, `[lte]`), references as pickers (`[in]` of ids),
 * booleans, other strings and user fields (an id or `me`) as "equals". In the document's order (state, created, updated, then the
 * type's fields as written).
 */
export function filterSpecs(doc: unknown, tenant: string, type: string, schema: unknown): FilterSpec[] {
  const params = listParameters(doc, tenant, type);
  const props = isRecord(schema) && isRecord(schema.properties) ? schema.properties : {};
  const specs: FilterSpec[] = [];
  for (const [name, value] of params) {
    if (name.includes('[') || NOT_FILTERS.has(name)) continue;
    const def = isRecord(props[name]) ? props[name] : {};
    const label = COLUMN_LABELS[name] ?? (typeof def.title === 'string' ? def.title : humanize(name));
    const base = { field: name, label, values: [] as string[], format: null, reference: null };
    const t: unknown = value.type;
    const ranged = params.has(`${name}[gte]`) && params.has(`${name}[lte]`);
    if (Array.isArray(value.enum) && params.has(`${name}[in]`)) {
      specs.push({ ...base, kind: 'multi', values: (value.enum as unknown[]).filter((v): v is string => typeof v === 'string') });
    } else if (t === 'boolean') {
      specs.push({ ...base, kind: 'boolean' });
    } else if (value.format === 'uuid' && typeof def['x-reference'] === 'string' && params.has(`${name}[in]`)) {
      specs.push({ ...base, kind: 'reference', reference: def['x-reference'] });
    } else if (ranged && (t === 'number' || t === 'integer' || isRecord(def['x-decimal']))) {
      specs.push({ ...base, kind: 'range', format: 'number' });
    } else if (ranged && (value.format === 'date' || value.format === 'date-time')) {
      specs.push({ ...base, kind: 'range', format: value.format });
    } else if (t === 'string' || isRecord(def['x-user'])) {
      // A user field takes a user's id or `me` (the caller): typed as text.
      specs.push({ ...base, kind: 'text' });
    }
  }
  return specs;
}

/** The URL parameters of a filter spec (what it reads and writes). */
export function specKeys(spec: FilterSpec): string[] {
  switch (spec.kind) {
    case 'multi':
    case 'reference':
      return [`${spec.field}[in]`];
    case 'range':
      return [`${spec.field}[gte]`, `${spec.field}[lte]`];
    case 'boolean':
    case 'text':
      return [spec.field];
  }
}

/** The filters set in the URL (only those of `specs`), as the list's query parameters. */
export function readFilters(params: URLSearchParams, specs: FilterSpec[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of specs.flatMap(specKeys)) {
    const v = params.get(key);
    if (v !== null && v !== '') out[key] = v;
  }
  return out;
}

/** The URL with filter `key` set to `value` (removed when null or empty), back on the first page. */
export function withFilter(params: URLSearchParams, key: string, value: string | null): URLSearchParams {
  const next = new URLSearchParams(params);
  if (value === null || value === '') next.delete(key);
  else next.set(key, value);
  next.delete('cursor');
  return next;
}

/** The URL without any filter of `specs` (search and sort stay). */
export function clearFilters(params: URLSearchParams, specs: FilterSpec[]): URLSearchParams {
  const next = new URLSearchParams(params);
  for (const key of specs.flatMap(specKeys)) next.delete(key);
  next.delete('cursor');
  return next;
}

/** The values of an `[in]` parameter (`A,B` → `['A', 'B']`). */
export function splitIn(value: string | null | undefined): string[] {
  return value ? value.split(',').filter((v) => v !== '') : [];
}

/** `values` with `value` added or removed, as an `[in]` parameter (null when none is left). */
export function toggleIn(current: string | null | undefined, value: string, on: boolean): string | null {
  const values = splitIn(current).filter((v) => v !== value);
  if (on) values.push(value);
  return values.length ? values.join(',') : null;
}

/** A date-time bound as the value of a `datetime-local` input (local time), or '' . */
export function toLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${String(d.getFullYear())}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A `datetime-local` input's value as an RFC 3339 date-time (what the API takes), or null. */
export function fromLocalInput(local: string): string | null {
  if (!local) return null;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** How many filters of `specs` are set (one per spec). */
export function activeCount(filters: Record<string, string>, specs: FilterSpec[]): number {
  return specs.filter((s) => specKeys(s).some((k) => k in filters)).length;
}

/**
 * The filters as a bulk transition's `filter` member (`docs/api.md`, "Bulk"): `[in]` values as
 * arrays, the search as `q`; the rest as the strings of the URL (the server parses them by kind).
 */
export function bulkFilter(filters: Record<string, string>, q: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(filters)) out[k] = k.endsWith('[in]') ? splitIn(v) : v;
  if (q) out.q = q;
  return out;
}
