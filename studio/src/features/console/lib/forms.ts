// Forms generated from a type's JSON Schema (the `schema` of `GET …/types`) for @rjsf/core:
// what a create form shows (the server's generated fields left out), the uiSchema that makes
// references pickers, the server's field errors placed at their fields, and a validator that
// never compiles code (the studio's CSP refuses `eval`, which ajv needs: the server validates).

import type { ErrorSchema, RJSFSchema, UiSchema, ValidatorType } from '@rjsf/utils';
import { humanize } from '../../../lib/humanize';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The schema of a create form: every `readOnly` (generated) property left out at any depth,
 * `$schema` dropped (the form needs no dialect), and a title for every property without one.
 */
export function createSchema(schema: unknown): RJSFSchema {
  const strip = (s: unknown): unknown => {
    if (!isObject(s)) return s;
    const out: Json = {};
    for (const [k, v] of Object.entries(s)) {
      if (k === '$schema') continue;
      if (k === 'properties' && isObject(v)) {
        const props: Json = {};
        for (const [name, p] of Object.entries(v)) {
          if (isObject(p) && p.readOnly === true) continue;
          const field = strip(p);
          // A field without a label is shown by its name, as a label ("postal_code" → "Postal code").
          props[name] = isObject(field) && typeof field.title !== 'string' ? { ...field, title: humanize(name) } : field;
        }
        out[k] = props;
      } else if (k === 'required' && Array.isArray(v) && isObject(s.properties)) {
        const props = s.properties;
        out[k] = v.filter((name) => typeof name === 'string' && !(isObject(props[name]) && props[name].readOnly === true));
      } else if (k === 'items') {
        out[k] = strip(v);
      } else {
        out[k] = v;
      }
    }
    return out;
  };
  return strip(schema) as RJSFSchema;
}

/**
 * The uiSchema of a generated form: reference fields (`x-reference`) and user fields (`x-user`)
 * as pickers, decimals (`x-decimal`) as text showing their scale, at any depth.
 */
export function uiSchemaFor(schema: unknown): UiSchema {
  if (!isObject(schema)) return {};
  if (typeof schema['x-reference'] === 'string') return { 'ui:widget': 'reference' };
  if (isObject(schema['x-user'])) return { 'ui:widget': 'user' };
  // A decimal (`x-decimal: {scale}`) is typed as text, exactly; the placeholder shows its scale.
  if (isObject(schema['x-decimal'])) {
    const scale = typeof schema['x-decimal'].scale === 'number' ? schema['x-decimal'].scale : 0;
    return { 'ui:placeholder': scale > 0 ? `0.${'0'.repeat(scale)}` : '0' };
  }
  if (isObject(schema.properties)) {
    const ui: UiSchema = {};
    for (const [name, p] of Object.entries(schema.properties)) {
      const sub = uiSchemaFor(p);
      if (Object.keys(sub).length > 0) ui[name] = sub;
    }
    return ui;
  }
  if (schema.type === 'array' && isObject(schema.items)) {
    const items = uiSchemaFor(schema.items);
    return Object.keys(items).length > 0 ? { items } : {};
  }
  return {};
}

/**
 * The field errors of a `VALIDATION_FAILED` answer (`details.errors`: `{path, message}` with JSON
 * pointers like `/data/items/0/quantity`) as rjsf's `extraErrors`, under `prefix` (`/data`,
 * `/input`); errors at the prefix itself go to the form's root. Errors elsewhere are returned
 * apart, to show above the form.
 */
export function serverErrors(details: unknown, prefix: string): { schema: ErrorSchema; other: string[] } {
  const schema: ErrorSchema = {};
  const other: string[] = [];
  const errors = isObject(details) && Array.isArray(details.errors) ? details.errors : [];
  for (const e of errors) {
    if (!isObject(e) || typeof e.path !== 'string' || typeof e.message !== 'string') continue;
    if (e.path !== prefix && !e.path.startsWith(`${prefix}/`)) {
      other.push(`${e.path || '/'}: ${e.message}`);
      continue;
    }
    const parts = e.path
      .slice(prefix.length)
      .split('/')
      .filter((p) => p !== '')
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    let node = schema as Record<string, unknown>;
    for (const p of parts) {
      node[p] ??= {};
      node = node[p] as Record<string, unknown>;
    }
    const list = (node.__errors as string[] | undefined) ?? [];
    node.__errors = [...list, e.message];
  }
  return { schema, other };
}

/** Whether `data` fits `schema` by type alone (enough for rjsf to choose among `oneOf`s). */
function fitsType(schema: unknown, data: unknown): boolean {
  if (!isObject(schema) || schema.type === undefined) return true;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.some((t) => {
    switch (t) {
      case 'null':
        return data === null;
      case 'object':
        return isObject(data);
      case 'array':
        return Array.isArray(data);
      case 'integer':
        return Number.isInteger(data);
      case 'number':
        return typeof data === 'number';
      default:
        return typeof data === t;
    }
  });
}

/**
 * A validator for rjsf that compiles nothing and finds nothing wrong: the form is submitted as
 * it is and the server's answer says what is wrong, field by field ([`serverErrors`]).
 */
export const serverSideValidator: ValidatorType = {
  validateFormData: () => ({ errors: [], errorSchema: {} }),
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- rjsf 5's ValidatorType still requires it
  toErrorList: () => [],
  isValid: (schema, formData) => fitsType(schema, formData),
  rawValidation: () => ({}),
};

/** A workflow state as `GET …/types` describes it. */
export interface StateInfo {
  name: string;
  editable?: { fields: string[]; roles: string[] } | null;
}

/** The fields `roles` may edit in `state` (none when the state makes nothing editable for them). */
export function editableFields(states: StateInfo[] | undefined, state: string, roles: string[]): string[] {
  const e = states?.find((s) => s.name === state)?.editable;
  if (!e || !e.roles.some((r) => roles.includes(r))) return [];
  return e.fields;
}

/** The schema of an edit form: only `fields` (those not generated), `$schema` dropped. */
export function editSchema(schema: unknown, fields: string[]): RJSFSchema {
  const full = createSchema(schema) as Json;
  const props = isObject(full.properties) ? full.properties : {};
  const kept: Json = {};
  for (const f of fields) if (f in props) kept[f] = props[f];
  const required = Array.isArray(full.required) ? full.required.filter((r) => typeof r === 'string' && r in kept) : [];
  return { ...full, properties: kept, required } as RJSFSchema;
}

/** The fields of `data` the form edits. */
export function pick(data: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (data[f] !== undefined) out[f] = data[f];
  return out;
}

/**
 * A JSON merge patch from `before` to `after` over `fields`: the changed fields with their new
 * value, `null` for a field cleared. Empty when nothing changed.
 */
export function mergePatch(before: Record<string, unknown>, after: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const f of fields) {
    const was = before[f];
    const now = after[f];
    if (JSON.stringify(was) === JSON.stringify(now)) continue;
    patch[f] = now === undefined ? null : now;
  }
  return patch;
}

/**
 * The form's values after reloading someone else's version: `theirs`, with the changes typed
 * here since `base` on top (a field cleared here stays cleared).
 */
export function rebase(
  base: Record<string, unknown>,
  typed: Record<string, unknown>,
  theirs: Record<string, unknown>,
  fields: string[],
): Record<string, unknown> {
  const mine = mergePatch(base, typed, fields);
  const next = Object.entries({ ...theirs, ...mine }).filter(([k, v]) => !(k in mine && v === null));
  return Object.fromEntries(next);
}

/** An English plural made singular, for the common endings (items, addresses, deliveries, batches). */
function singular(word: string): string {
  if (/ies$/i.test(word)) return `${word.slice(0, -3)}y`;
  if (/(ss|ch|sh|x)es$/i.test(word)) return word.slice(0, -2);
  if (/[^s]s$/i.test(word)) return word.slice(0, -1);
  return word;
}

/**
 * The title of an array's item as people read it. rjsf titles the n-th item of "Line items"
 * "Line items-1"; this gives "Line item 1" (the array's title made singular, then the number).
 * Only for an item's title (`id` like `root_items_0__title`); any other title is kept.
 */
export function itemTitle(id: string, title: string): string {
  if (!/_\d+__title$/.test(id)) return title;
  const m = /^(.+)-(\d+)$/.exec(title);
  if (!m?.[1] || !m[2]) return title;
  const base = m[1].trim();
  return `${singular(base)} ${m[2]}`;
}
