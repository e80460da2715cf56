import { describe, expect, it } from 'vitest';
import {
  addField,
  addType,
  changeKind,
  fieldReferences,
  identifierProblem,
  removeField,
  removeType,
  renameField,
  renameType,
  typeReferences,
  updateField,
  type EditResult,
  type FieldJson,
} from './fields';
import type { PackageJson } from './model';
import { chemichemi, examplePackages } from './testPackages';

function ok(r: EditResult): PackageJson {
  if (!r.ok) throw new Error(r.error);
  return r.pkg;
}

describe('types', () => {
  it('adds a type and refuses bad or taken names', () => {
    const pkg = ok(addType(chemichemi(), 'complaint', 'Complaint'));
    expect(pkg.types.at(-1)).toEqual({ name: 'complaint', label: 'Complaint', fields: {} });
    expect(addType(pkg, 'complaint')).toEqual({ ok: false, error: 'There is already a type “complaint”.' });
    expect(addType(pkg, 'Complaint').ok).toBe(false);
  });

  it.each(examplePackages())('%s: renaming every type leaves no reference to the old name', (_, pkg) => {
    for (const t of pkg.types) {
      const before = typeReferences(pkg, t.name);
      const renamed = ok(renameType(pkg, t.name, `${t.name}_x`));
      expect(typeReferences(renamed, t.name)).toEqual([]);
      expect(typeReferences(renamed, `${t.name}_x`)).toEqual(before.map((r) => r.replaceAll(`${t.name}.`, `${t.name}_x.`)));
      for (const role of Object.values(renamed.tenant.roles ?? {})) {
        expect(Object.keys(role.permissions ?? {})).not.toContain(t.name);
      }
    }
  });

  it('refuses to remove a type something refers to, naming it', () => {
    const r = removeType(chemichemi(), 'customer');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('field order.customer_id refers to it');
    const added = ok(addType(chemichemi(), 'spare'));
    expect(ok(removeType(added, 'spare')).types.map((t) => t.name)).toEqual(chemichemi().types.map((t) => t.name));
  });
});

describe('fields', () => {
  it('names', () => {
    expect(identifierProblem('state', 'field')).toBe('“state” is reserved for every entity.');
    expect(identifierProblem('state', 'type')).toBeNull();
    expect(identifierProblem('Total', 'field')).not.toBeNull();
  });

  it('adds fields with the options their kind needs', () => {
    let pkg = ok(addField(chemichemi(), 'order', 'priority', 'enum'));
    pkg = ok(addField(pkg, 'order', 'parent_id', 'reference'));
    const f = pkg.types.find((t) => t.name === 'order')?.fields;
    expect(f?.priority).toEqual({ type: 'enum', values: ['value'] });
    expect(f?.parent_id).toEqual({ type: 'reference', to: 'order' });
    expect(addField(pkg, 'order', 'priority', 'string')).toEqual({ ok: false, error: 'There is already a field “priority”.' });
  });

  it('renames a field in editable lists and the number, in place', () => {
    const pkg = ok(renameField(chemichemi(), 'order', 'notes', 'remarks'));
    const order = pkg.types.find((t) => t.name === 'order');
    const keys = Object.keys(order?.fields ?? {});
    const original = Object.keys(chemichemi().types.find((t) => t.name === 'order')?.fields ?? {});
    expect(keys).toEqual(original.map((k) => (k === 'notes' ? 'remarks' : k)));
    expect(order?.workflow?.states.DRAFT?.editable?.fields).toContain('remarks');
    expect(order?.workflow?.states.DRAFT?.editable?.fields).not.toContain('notes');
    const numbered = ok(renameField(chemichemi(), 'order', 'order_number', 'ref'));
    expect(numbered.types.find((t) => t.name === 'order')?.number).toMatchObject({ field: 'ref' });
  });

  it('refuses to remove a used field, and removes an unused one', () => {
    const order = chemichemi().types.find((t) => t.name === 'order');
    if (!order) throw new Error('no order');
    expect(fieldReferences(order, 'notes')).toContain('state DRAFT lets it be edited');
    expect(removeField(chemichemi(), 'order', 'notes').ok).toBe(false);
    const pkg = ok(removeField(chemichemi(), 'order', 'failure_reason'));
    expect(pkg.types.find((t) => t.name === 'order')?.fields?.failure_reason).toBeUndefined();
  });

  it('sets and clears options', () => {
    let pkg = ok(updateField(chemichemi(), 'order', 'notes', { required: true, max_length: undefined }));
    expect(pkg.types.find((t) => t.name === 'order')?.fields?.notes).toEqual({ type: 'string', required: true });
    pkg = ok(updateField(pkg, 'order', 'notes', { required: undefined }));
    expect(pkg.types.find((t) => t.name === 'order')?.fields?.notes).toEqual({ type: 'string' });
  });

  it('change a field’s kind, dropping what the old kind had and giving a decimal its scale', () => {
    let pkg = ok(updateField(chemichemi(), 'order', 'notes', { max_length: 200, pattern: '^x' }));
    const notes = () => pkg.types.find((t) => t.name === 'order')?.fields?.notes as FieldJson | undefined;
    const current = notes();
    if (!current) throw new Error('no notes field');
    pkg = ok(updateField(pkg, 'order', 'notes', changeKind(current, 'decimal')));
    expect(notes()).toEqual({ type: 'decimal', scale: 2 });
    pkg = ok(updateField(pkg, 'order', 'notes', { rounding: 'half_up', minimum: 0 }));
    const decimal = notes();
    if (!decimal) throw new Error('no notes field');
    pkg = ok(updateField(pkg, 'order', 'notes', changeKind(decimal, 'number')));
    expect(notes()).toEqual({ type: 'number', minimum: 0 });
  });
});
