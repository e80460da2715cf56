// Edits of types and their fields, pure like the workflow's: add, rename (references follow:
// reference fields' `to`, loads' `type`, role permissions, states' editable fields, the number's
// field) and remove (refused while something refers to it, saying what).

import type { PackageJson, TypeJson, WorkflowJson } from './model';

export type EditResult = { ok: true; pkg: PackageJson } | { ok: false; error: string };

export const FIELD_KINDS = [
  'string',
  'number',
  'integer',
  'decimal',
  'boolean',
  'date',
  'datetime',
  'enum',
  'reference',
  'user',
  'object',
  'array',
] as const;
export type FieldKind = (typeof FIELD_KINDS)[number];

export interface FieldJson {
  type: FieldKind;
  required?: boolean;
  default?: unknown;
  label?: string;
  description?: string;
  generated?: boolean;
  values?: string[];
  to?: string;
  fields?: Record<string, FieldJson>;
  items?: FieldJson;
  minimum?: number;
  maximum?: number;
  precision?: number;
  scale?: number;
  rounding?: string;
  role?: string;
  min_length?: number;
  max_length?: number;
  pattern?: string;
  filterable?: boolean;
  sortable?: boolean;
  searchable?: boolean;
  [key: string]: unknown;
}

/** The rounding modes of a decimal field (what `rounding:` accepts). */
export const ROUNDING_MODES = ['half_even', 'half_up', 'half_down', 'up', 'down', 'ceiling', 'floor'] as const;

/** The options that belong to each kind (besides those every field has). */
const KIND_OPTIONS: Record<FieldKind, readonly string[]> = {
  string: ['min_length', 'max_length', 'pattern', 'format', 'searchable'],
  number: ['minimum', 'maximum'],
  integer: ['minimum', 'maximum'],
  decimal: ['precision', 'scale', 'rounding', 'minimum', 'maximum'],
  boolean: [],
  date: [],
  datetime: [],
  enum: ['values'],
  reference: ['to'],
  user: ['role'],
  object: ['fields'],
  array: ['items', 'min_items', 'max_items'],
};

/**
 * The patch that turns `field` into a field of `kind`: the options of its old kind that the new
 * one does not take are cleared (the server would refuse them), and a decimal gets a scale of 2
 * (it needs one) unless it has one.
 */
export function changeKind(field: FieldJson, kind: FieldKind): Partial<FieldJson> {
  const patch: Record<string, unknown> = { type: kind };
  const keep = new Set(KIND_OPTIONS[kind]);
  for (const key of Object.values(KIND_OPTIONS).flat()) {
    if (!keep.has(key) && field[key] !== undefined) patch[key] = undefined;
  }
  if (kind === 'decimal' && field.scale === undefined) patch.scale = 2;
  return patch;
}

const RESERVED = ['id', 'type', 'state', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by'];
const SNAKE = /^[a-z][a-z0-9_]{0,62}$/;

/** Why `name` cannot name a type or field (snake_case, not reserved), or null. */
export function identifierProblem(name: string, what: 'type' | 'field'): string | null {
  if (name === '') return 'A name is required.';
  if (!SNAKE.test(name)) return 'Use snake_case: lowercase letters, digits and _, starting with a letter (at most 63).';
  if (what === 'field' && RESERVED.includes(name)) return `“${name}” is reserved for every entity.`;
  return null;
}

const fail = (error: string): EditResult => ({ ok: false, error });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mapType(pkg: PackageJson, name: string, f: (t: TypeJson) => TypeJson | string): EditResult {
  const index = pkg.types.findIndex((t) => t.name === name);
  const type = pkg.types[index];
  if (!type) return fail(`There is no type “${name}”.`);
  const next = f(type);
  if (typeof next === 'string') return fail(next);
  const types = pkg.types.slice();
  types[index] = next;
  return { ok: true, pkg: { ...pkg, types } };
}

/** A field definition with every reference to type `from` made to `to` (nested fields too). */
function retargetField(field: unknown, from: string, to: string): unknown {
  if (!isRecord(field)) return field;
  const out: Record<string, unknown> = { ...field };
  if (out.to === from) out.to = to;
  if (isRecord(out.fields)) {
    out.fields = Object.fromEntries(Object.entries(out.fields).map(([k, v]) => [k, retargetField(v, from, to)]));
  }
  if (out.items !== undefined) out.items = retargetField(out.items, from, to);
  return out;
}

function fieldRefersTo(field: unknown, type: string): boolean {
  if (!isRecord(field)) return false;
  if (field.to === type) return true;
  if (isRecord(field.fields) && Object.values(field.fields).some((f) => fieldRefersTo(f, type))) return true;
  return fieldRefersTo(field.items, type);
}

/** What refers to a type: reference fields, loads and scripts' creates are listed by place. */
export function typeReferences(pkg: PackageJson, name: string): string[] {
  const refs: string[] = [];
  for (const t of pkg.types) {
    for (const [f, def] of Object.entries(t.fields ?? {})) {
      if (fieldRefersTo(def, name)) refs.push(`field ${t.name}.${f} refers to it`);
    }
    for (const [tr, def] of Object.entries(t.workflow?.transitions ?? {})) {
      for (const [load, l] of Object.entries(def.load ?? {})) {
        if (isRecord(l) && l.type === name) refs.push(`load ${load} of ${t.name}.${tr} reads it`);
      }
    }
  }
  return refs;
}

export function addType(pkg: PackageJson, name: string, label?: string): EditResult {
  const problem = identifierProblem(name, 'type');
  if (problem) return fail(problem);
  if (pkg.types.some((t) => t.name === name)) return fail(`There is already a type “${name}”.`);
  const type: TypeJson = { name, ...(label ? { label } : {}), fields: {} };
  return { ok: true, pkg: { ...pkg, types: [...pkg.types, type] } };
}

export function renameType(pkg: PackageJson, from: string, to: string): EditResult {
  if (from === to) return { ok: true, pkg };
  const problem = identifierProblem(to, 'type');
  if (problem) return fail(problem);
  if (!pkg.types.some((t) => t.name === from)) return fail(`There is no type “${from}”.`);
  if (pkg.types.some((t) => t.name === to)) return fail(`There is already a type “${to}”.`);
  const types = pkg.types.map((t) => {
    const fields = t.fields
      ? Object.fromEntries(Object.entries(t.fields).map(([k, v]) => [k, retargetField(v, from, to)]))
      : t.fields;
    let workflow: WorkflowJson | undefined = t.workflow;
    if (workflow?.transitions) {
      const transitions = Object.fromEntries(
        Object.entries(workflow.transitions).map(([n, tr]) => [
          n,
          tr.load
            ? {
                ...tr,
                load: Object.fromEntries(
                  Object.entries(tr.load).map(([k, l]) => [k, isRecord(l) && l.type === from ? { ...l, type: to } : l]),
                ),
              }
            : tr,
        ]),
      );
      workflow = { ...workflow, transitions };
    }
    const next: TypeJson = { ...t, ...(fields ? { fields } : {}), ...(workflow ? { workflow } : {}) };
    if (t.name === from) next.name = to;
    return next;
  });
  const roles = pkg.tenant.roles
    ? Object.fromEntries(
        Object.entries(pkg.tenant.roles).map(([r, def]) => [
          r,
          isRecord(def.permissions)
            ? {
                ...def,
                permissions: Object.fromEntries(
                  Object.entries(def.permissions).map(([k, v]) => [k === from ? to : k, v]),
                ),
              }
            : def,
        ]),
      )
    : undefined;
  return { ok: true, pkg: { ...pkg, tenant: roles ? { ...pkg.tenant, roles } : pkg.tenant, types } };
}

/** Removes a type nothing refers to; otherwise says what does. */
export function removeType(pkg: PackageJson, name: string): EditResult {
  if (!pkg.types.some((t) => t.name === name)) return fail(`There is no type “${name}”.`);
  const refs = typeReferences(pkg, name).filter((r) => !r.startsWith(`field ${name}.`));
  if (refs.length > 0) return fail(`“${name}” is still used: ${refs.join('; ')}.`);
  return { ok: true, pkg: { ...pkg, types: pkg.types.filter((t) => t.name !== name) } };
}

/** Where a field of a type is used: states' editable lists, the number. */
export function fieldReferences(type: TypeJson, field: string): string[] {
  const refs: string[] = [];
  for (const [s, def] of Object.entries(type.workflow?.states ?? {})) {
    if (def.editable?.fields.includes(field)) refs.push(`state ${s} lets it be edited`);
  }
  if (isRecord(type.number) && type.number.field === field) refs.push('the number is written to it');
  return refs;
}

export function addField(pkg: PackageJson, type: string, name: string, kind: FieldKind): EditResult {
  const problem = identifierProblem(name, 'field');
  if (problem) return fail(problem);
  return mapType(pkg, type, (t) => {
    if (t.fields && name in t.fields) return `There is already a field “${name}”.`;
    return { ...t, fields: { ...(t.fields ?? {}), [name]: newField(kind, type) } };
  });
}

export function renameField(pkg: PackageJson, type: string, from: string, to: string): EditResult {
  if (from === to) return { ok: true, pkg };
  const problem = identifierProblem(to, 'field');
  if (problem) return fail(problem);
  return mapType(pkg, type, (t) => {
    const fields = t.fields ?? {};
    if (!(from in fields)) return `There is no field “${from}”.`;
    if (to in fields) return `There is already a field “${to}”.`;
    const next: TypeJson = {
      ...t,
      fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k === from ? to : k, v])),
    };
    if (t.workflow) {
      next.workflow = {
        ...t.workflow,
        states: Object.fromEntries(
          Object.entries(t.workflow.states).map(([s, def]) => [
            s,
            def.editable
              ? { ...def, editable: { ...def.editable, fields: def.editable.fields.map((f) => (f === from ? to : f)) } }
              : def,
          ]),
        ),
      };
    }
    if (isRecord(t.number) && t.number.field === from) next.number = { ...t.number, field: to };
    return next;
  });
}

export function removeField(pkg: PackageJson, type: string, name: string): EditResult {
  return mapType(pkg, type, (t) => {
    if (!t.fields || !(name in t.fields)) return `There is no field “${name}”.`;
    const refs = fieldReferences(t, name);
    if (refs.length > 0) return `“${name}” is still used: ${refs.join('; ')}.`;
    return { ...t, fields: Object.fromEntries(Object.entries(t.fields).filter(([k]) => k !== name)) };
  });
}

/** Sets (or, with undefined, clears) options of a field. */
export function updateField(pkg: PackageJson, type: string, name: string, patch: Partial<FieldJson>): EditResult {
  return mapType(pkg, type, (t) => {
    const current = t.fields?.[name];
    if (!isRecord(current)) return `There is no field “${name}”.`;
    const merged: Record<string, unknown> = { ...current, ...patch };
    const next = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined));
    return { ...t, fields: { ...(t.fields ?? {}), [name]: next } };
  });
}

/** Sets (or clears) the type's own keys: label, description, title. */
export function updateType(pkg: PackageJson, type: string, patch: Partial<TypeJson>): EditResult {
  return mapType(pkg, type, (t) => {
    const merged: Record<string, unknown> = { ...t, ...patch };
    return Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as TypeJson;
  });
}

// Nested fields: an object field's `fields`, and those of an array's element when the element is
// an object (an order's `items`: product_id, quantity, unit_price). A field is found by its path:
// its name, then the names of the nested fields down to it (an array's element is passed through:
// `['items', 'quantity']`). Edits keep every key where it was, so a package read and written back
// is the same JSON.

/** A field's place in its type: the top-level name, then nested names. */
export type FieldPath = readonly string[];

/** The nested fields a field holds: an object's, or its array element's when that is an object. */
export function nestedFields(def: unknown): Record<string, FieldJson> | undefined {
  if (!isRecord(def)) return undefined;
  if (def.type === 'object') return (isRecord(def.fields) ? def.fields : {}) as Record<string, FieldJson>;
  if (def.type === 'array' && isRecord(def.items) && def.items.type === 'object') {
    return (isRecord(def.items.fields) ? def.items.fields : {}) as Record<string, FieldJson>;
  }
  return undefined;
}

/** Whether nested fields can be added to `def` (an object, or an array of objects). */
export function holdsFields(def: unknown): boolean {
  return nestedFields(def) !== undefined;
}

/** `def` with its nested fields replaced (an object's `fields`, or its element's). */
function withNested(def: FieldJson, fields: Record<string, FieldJson>): FieldJson {
  if (def.type === 'object') return { ...def, fields };
  const items = def.items ?? { type: 'object' };
  return { ...def, items: { ...items, fields } };
}

/** The field at `path` of a type, if there is one. */
export function fieldAt(type: TypeJson, path: FieldPath): FieldJson | undefined {
  let fields: Record<string, FieldJson> | undefined = type.fields as Record<string, FieldJson> | undefined;
  let def: FieldJson | undefined;
  for (const [i, name] of path.entries()) {
    if (!fields || !Object.hasOwn(fields, name)) return undefined;
    def = fields[name];
    if (i < path.length - 1) fields = nestedFields(def);
  }
  return def;
}

/** The path as people read it: `items.quantity`. */
export function pathText(path: FieldPath): string {
  return path.join('.');
}

/**
 * Edits the map of fields holding the last name of `path` (the type's own fields, or a nested
 * field's): `f` gets the map and that name and returns the new map or why not.
 */
function editContainer(
  pkg: PackageJson,
  type: string,
  path: FieldPath,
  f: (fields: Record<string, FieldJson>, name: string) => Record<string, FieldJson> | string,
): EditResult {
  if (path.length === 0) return fail('A field path is empty.');
  const walk = (fields: Record<string, FieldJson>, rest: FieldPath): Record<string, FieldJson> | string => {
    const [head, ...tail] = rest;
    if (head === undefined) return 'A field path is empty.';
    if (tail.length === 0) return f(fields, head);
    const def = Object.hasOwn(fields, head) ? fields[head] : undefined;
    if (!def) return `There is no field “${head}”.`;
    const inner = nestedFields(def);
    if (!inner) return `“${head}” holds no fields (only an object, or an array of objects, does).`;
    const next = walk(inner, tail);
    if (typeof next === 'string') return next;
    return { ...fields, [head]: withNested(def, next) };
  };
  return mapType(pkg, type, (t) => {
    const fields = walk((t.fields ?? {}) as Record<string, FieldJson>, path);
    return typeof fields === 'string' ? fields : { ...t, fields };
  });
}

/** Adds a field of `kind` inside the field at `parent` (an object, or an array of objects). */
export function addNestedField(pkg: PackageJson, type: string, parent: FieldPath, name: string, kind: FieldKind): EditResult {
  if (parent.length === 0) return addField(pkg, type, name, kind);
  const problem = identifierProblem(name, 'field');
  if (problem) return fail(problem);
  const t = pkg.types.find((x) => x.name === type);
  const holder = t ? fieldAt(t, parent) : undefined;
  if (!holder) return fail(`There is no field “${pathText(parent)}”.`);
  if (!holdsFields(holder)) return fail(`“${pathText(parent)}” holds no fields: make it an object, or an array of objects.`);
  return editContainer(pkg, type, [...parent, name], (fields, n) => {
    if (Object.hasOwn(fields, n)) return `There is already a field “${pathText([...parent, n])}”.`;
    return { ...fields, [n]: newField(kind, type) };
  });
}

/** A new field of `kind`, with what its kind needs (a decimal its scale: 2 by default). */
function newField(kind: FieldKind, type: string): FieldJson {
  const def: FieldJson = { type: kind };
  if (kind === 'decimal') def.scale = 2;
  if (kind === 'enum') def.values = ['value'];
  if (kind === 'reference') def.to = type;
  if (kind === 'object') def.fields = {};
  if (kind === 'array') def.items = { type: 'string' };
  return def;
}

/** Sets (or, with undefined, clears) options of the field at `path`. */
export function updateFieldAt(pkg: PackageJson, type: string, path: FieldPath, patch: Partial<FieldJson>): EditResult {
  if (path.length === 1 && path[0] !== undefined) return updateField(pkg, type, path[0], patch);
  return editContainer(pkg, type, path, (fields, name) => {
    const current = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (!isRecord(current)) return `There is no field “${pathText(path)}”.`;
    const merged: Record<string, unknown> = { ...current, ...patch };
    const next = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as FieldJson;
    return { ...fields, [name]: next };
  });
}

/** Renames the field at `path` in place (a top-level field's references follow: `renameField`). */
export function renameFieldAt(pkg: PackageJson, type: string, path: FieldPath, to: string): EditResult {
  if (path.length === 1 && path[0] !== undefined) return renameField(pkg, type, path[0], to);
  const from = path[path.length - 1];
  if (from === to) return { ok: true, pkg };
  const problem = identifierProblem(to, 'field');
  if (problem) return fail(problem);
  return editContainer(pkg, type, path, (fields, name) => {
    if (!Object.hasOwn(fields, name)) return `There is no field “${pathText(path)}”.`;
    if (Object.hasOwn(fields, to)) return `There is already a field “${pathText([...path.slice(0, -1), to])}”.`;
    return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k === name ? to : k, v]));
  });
}

/** Removes the field at `path` (a top-level field only when nothing refers to it: `removeField`). */
export function removeFieldAt(pkg: PackageJson, type: string, path: FieldPath): EditResult {
  if (path.length === 1 && path[0] !== undefined) return removeField(pkg, type, path[0]);
  return editContainer(pkg, type, path, (fields, name) => {
    if (!Object.hasOwn(fields, name)) return `There is no field “${pathText(path)}”.`;
    return Object.fromEntries(Object.entries(fields).filter(([k]) => k !== name));
  });
}

/**
 * The patch making an array's elements of `kind` (an object's element gets `fields: {}`, the
 * options of the old element kind that the new one does not take are cleared).
 */
export function changeElementKind(field: FieldJson, kind: FieldKind, typeName: string): Partial<FieldJson> {
  const items = field.items ?? { type: 'string' };
  const patch = changeKind(items, kind) as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...items, ...patch };
  const next = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as FieldJson;
  const extra = newField(kind, typeName);
  for (const key of ['values', 'fields', 'items', 'to', 'scale'] as const) {
    if (extra[key] !== undefined && next[key] === undefined) next[key] = extra[key] as never;
  }
  return { items: next };
}

/** A type's fields with their nested fields after each, depth first: the fields table's rows. */
export function flattenFields(type: TypeJson): { path: string[]; def: FieldJson; depth: number }[] {
  const out: { path: string[]; def: FieldJson; depth: number }[] = [];
  const walk = (fields: Record<string, FieldJson> | undefined, prefix: string[]) => {
    for (const [name, def] of Object.entries(fields ?? {})) {
      const path = [...prefix, name];
      out.push({ path, def, depth: prefix.length });
      walk(nestedFields(def), path);
    }
  };
  walk(type.fields as Record<string, FieldJson> | undefined, []);
  return out;
}
