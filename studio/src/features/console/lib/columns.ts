// A list's columns and sort keys, from the type's JSON Schema (`GET …/types`) and its tenant
// document's `sort` parameter (`GET …/openapi.json`): generated from the configuration, with no
// code per type.

import { humanize } from '../../../lib/humanize';

export interface Column {
  field: string;
  label: string;
  sortable: boolean;
  reference: string | null;
  /** A user field (`x-user`): shown by the user's name. */
  user: boolean;
  /** A number, integer or decimal: right-aligned, so its digits line up. */
  numeric: boolean;
  /** A decimal (`x-decimal`, an exact string such as an amount): shown with its digits grouped. */
  decimal: boolean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const SCALAR = new Set(['string', 'number', 'integer', 'boolean']);

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Titles up to this many characters (as a reader counts them) stay on one line in a list. */
export const ONE_LINE_TITLE = 24;

/**
 * Whether a list shows an entity's title on one line: a short one (a number such as
 * `ORD-2026-000001` must not break at its hyphens), while a long one ("Stock of LPG-6KG-R LPG 6
 * kg refill in NBO-MAIN Nairobi Main Depot") wraps rather than push the other columns aside.
 */
export function titleOnOneLine(title: string): boolean {
  if (title.length <= ONE_LINE_TITLE) return true;
  const segments = graphemes.segment(title)[Symbol.iterator]();
  let count = 0;
  while (!segments.next().done) {
    count += 1;
    if (count > ONE_LINE_TITLE) return false;
  }
  return true;
}

/**
 * Whether a field's JSON Schema is a number: `number` or `integer` (maybe nullable), or a
 * decimal (`x-decimal`, sent as a string to keep it exact).
 */
export function isNumeric(def: unknown): boolean {
  if (!isRecord(def)) return false;
  if (isRecord(def['x-decimal'])) return true;
  const raw: unknown = def.type;
  const kinds: unknown[] = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  return kinds.some((k) => k === 'number' || k === 'integer');
}

/** The sort keys the tenant's document allows for the type's list (`sort` enum, ascending ones). */
export function sortKeys(doc: unknown, tenant: string, type: string): string[] {
  if (!isRecord(doc) || !isRecord(doc.paths)) return [];
  const op = doc.paths[`/api/v1/t/${tenant}/entities/${type}`];
  const get = isRecord(op) ? op.get : undefined;
  const params = isRecord(get) && Array.isArray(get.parameters) ? (get.parameters as unknown[]) : [];
  const sort = params.find((p) => isRecord(p) && p.name === 'sort');
  const schema = isRecord(sort) && isRecord(sort.schema) ? sort.schema : {};
  const values = Array.isArray(schema.enum) ? (schema.enum as unknown[]) : [];
  return values.filter((v): v is string => typeof v === 'string' && !v.startsWith('-'));
}

/** A row of a list, as far as its columns care. */
export interface ColumnRow {
  display?: string | null;
  data: Record<string, unknown>;
}

/**
 * Columns: the scalar top-level fields, sortable ones first (they are what a list is sorted and
 * filtered by), at most `max`. A field that says nothing on the page's rows is left out so
 * another takes its place: one that only repeats each row's title (an order number that is the
 * order's title: the title column shows it), or one empty on every row (a sortable field stays:
 * its header sorts the list).
 */
export function columns(schema: unknown, sortable: string[], max = 4, rows: ColumnRow[] = []): Column[] {
  const saysNothing = (field: string) =>
    rows.length > 0 &&
    (rows.every((r) => typeof r.display === 'string' && cell(r.data[field]) === r.display) ||
      (!sortable.includes(field) && rows.every((r) => cell(r.data[field]) === '')));
  const props = isRecord(schema) && isRecord(schema.properties) ? schema.properties : {};
  const all = Object.entries(props).flatMap(([field, def]): Column[] => {
    if (!isRecord(def)) return [];
    const raw: unknown = def.type;
    const kind: unknown = Array.isArray(raw) ? (raw as unknown[]).find((t) => t !== 'null') : raw;
    if (typeof kind !== 'string' || !SCALAR.has(kind) || saysNothing(field)) return [];
    return [
      {
        field,
        label: typeof def.title === 'string' ? def.title : humanize(field),
        sortable: sortable.includes(field),
        reference: typeof def['x-reference'] === 'string' ? def['x-reference'] : null,
        user: isRecord(def['x-user']),
        numeric: isNumeric(def),
        decimal: isRecord(def['x-decimal']),
      },
    ];
  });
  return [...all.filter((c) => c.sortable), ...all.filter((c) => !c.sortable)].slice(0, max);
}

/**
 * A decimal's text with the digits of its whole part grouped by thousands (`1300.00` →
 * `1,300.00`), exactly: the string's own digits, never a float's. Anything else as it is.
 */
export function groupDigits(value: string): string {
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(value);
  if (!m) return value;
  const [, sign = '', whole = '', fraction = ''] = m;
  return sign + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + fraction;
}

/** A value's text as its schema says: a decimal with its digits grouped, else [`cell`]. */
export function valueText(def: unknown, value: unknown): string {
  return isRecord(def) && isRecord(def['x-decimal']) && typeof value === 'string' ? groupDigits(value) : cell(value);
}

/** A cell's text: a yes/no field reads Yes or No, as people write it. */
export function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  if (typeof value === 'number') return String(value);
  return JSON.stringify(value);
}

/** The list's state in the URL: `?q=…&sort=-total_amount&cursor=…`. */
export interface ListQuery {
  q: string;
  sort: string;
  cursor: string | null;
}

export function readListQuery(params: URLSearchParams): ListQuery {
  return { q: params.get('q') ?? '', sort: params.get('sort') ?? '-created_at', cursor: params.get('cursor') };
}

/** The sort after clicking a column: ascending, then descending, then ascending again. */
export function nextSort(current: string, field: string): string {
  return current === field ? `-${field}` : field;
}
