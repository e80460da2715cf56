// The entities that refer to an entity (a trip's orders, an order's variances): the fields of
// any viewable type whose `x-reference` is this entity's type and that its list can filter on
// (the tenant document lists `field[in]`), each read as that type's list filtered by this id.

import { humanize } from '../../../lib/humanize';

export interface Referrer {
  type: string;
  typeLabel: string;
  field: string;
  fieldLabel: string;
}

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function filterable(doc: unknown, tenant: string, type: string): Set<string> {
  const out = new Set<string>();
  if (!isRecord(doc) || !isRecord(doc.paths)) return out;
  const op = doc.paths[`/api/v1/t/${tenant}/entities/${type}`];
  const get = isRecord(op) ? op.get : undefined;
  for (const p of isRecord(get) && Array.isArray(get.parameters) ? (get.parameters as unknown[]) : []) {
    if (isRecord(p) && typeof p.name === 'string' && p.name.endsWith('[in]')) out.add(p.name.slice(0, -4));
  }
  return out;
}

/** Every (type, field) that refers to `target` and can be filtered on, in the types' order. */
export function referrers(
  types: { name: string; label?: string | null; schema: unknown }[],
  doc: unknown,
  tenant: string,
  target: string,
): Referrer[] {
  return types.flatMap((t) => {
    const props = isRecord(t.schema) && isRecord(t.schema.properties) ? t.schema.properties : {};
    const can = filterable(doc, tenant, t.name);
    return Object.entries(props).flatMap(([field, def]): Referrer[] =>
      isRecord(def) && def['x-reference'] === target && can.has(field)
        ? [{ type: t.name, typeLabel: t.label ?? humanize(t.name), field, fieldLabel: typeof def.title === 'string' ? def.title : humanize(field) }]
        : [],
    );
  });
}

/** The list of `r.type` filtered to the entities whose `r.field` is `id` (its URL's query). */
export function relatedQuery(r: Referrer, id: string): string {
  return new URLSearchParams({ [`${r.field}[in]`]: id }).toString();
}
