import { describe, expect, it } from 'vitest';
import {
  addNestedField,
  changeElementKind,
  fieldAt,
  flattenFields,
  removeFieldAt,
  renameFieldAt,
  updateFieldAt,
  type EditResult,
} from './fields';
import { packageFiles, readPackageFiles } from './files';
import { findType, type PackageJson, type TypeJson } from './model';
import { chemichemi, examplePackages } from './testPackages';

function ok(r: EditResult): PackageJson {
  if (!r.ok) throw new Error(r.error);
  return r.pkg;
}

const text = (v: unknown) => JSON.stringify(v);

function order(pkg: PackageJson): TypeJson {
  const t = findType(pkg, 'order');
  if (!t) throw new Error('no order');
  return t;
}

describe('nested fields', () => {
  it.each(examplePackages())('%s: every nested field is found, and edits that change nothing give the same JSON', (_, pkg) => {
    const before = text(pkg);
    for (const t of pkg.types) {
      for (const { path, def } of flattenFields(t)) {
        expect(fieldAt(t, path)).toBe(def);
        // Setting nothing, renaming to itself: the same package, key order included.
        expect(text(ok(updateFieldAt(pkg, t.name, path, {})))).toBe(before);
        expect(text(ok(renameFieldAt(pkg, t.name, path, path[path.length - 1] ?? '')))).toBe(before);
        if (path.length > 1) {
          // Add then remove a nested field next to it; rename there and back.
          const parent = path.slice(0, -1);
          const added = ok(addNestedField(pkg, t.name, parent, 'zz_probe', 'string'));
          expect(fieldAt(findType(added, t.name) ?? t, [...parent, 'zz_probe'])).toEqual({ type: 'string' });
          expect(text(ok(removeFieldAt(added, t.name, [...parent, 'zz_probe'])))).toBe(before);
          const renamed = ok(renameFieldAt(pkg, t.name, path, 'zz_renamed'));
          expect(text(ok(renameFieldAt(renamed, t.name, [...parent, 'zz_renamed'], path[path.length - 1] ?? '')))).toBe(before);
        }
      }
    }
    // The package ⇄ files round trip is still the identity after those edits.
    const files = packageFiles(pkg);
    const back = readPackageFiles(files);
    expect(back.ok).toBe(true);
  });

  it('lists an order’s items with their element’s fields, in order', () => {
    const rows = flattenFields(order(chemichemi()));
    const items = rows.filter((r) => r.path[0] === 'items').map((r) => [r.path.join('.'), r.depth]);
    expect(items.slice(0, 4)).toEqual([
      ['items', 0],
      ['items.product_id', 1],
      ['items.quantity', 1],
      ['items.unit_price', 1],
    ]);
    expect(rows.find((r) => r.path.join('.') === 'delivery_address.city')?.depth).toBe(1);
  });

  it('adds, edits, renames and removes a nested field of an array of objects', () => {
    let pkg = chemichemi();
    pkg = ok(addNestedField(pkg, 'order', ['items'], 'discount', 'decimal'));
    expect(Object.keys(order(pkg).fields?.items as object)).toEqual(Object.keys(order(chemichemi()).fields?.items as object));
    expect(fieldAt(order(pkg), ['items', 'discount'])).toEqual({ type: 'decimal', scale: 2 });
    pkg = ok(updateFieldAt(pkg, 'order', ['items', 'discount'], { scale: 2, label: 'Discount' }));
    expect(fieldAt(order(pkg), ['items', 'discount'])).toEqual({ type: 'decimal', scale: 2, label: 'Discount' });
    pkg = ok(renameFieldAt(pkg, 'order', ['items', 'discount'], 'rebate'));
    const names = flattenFields(order(pkg)).filter((r) => r.path[0] === 'items').map((r) => r.path.join('.'));
    expect(names.at(-1)).toBe('items.rebate');
    expect(renameFieldAt(pkg, 'order', ['items', 'rebate'], 'quantity')).toEqual({ ok: false, error: 'There is already a field “items.quantity”.' });
    expect(addNestedField(pkg, 'order', ['items'], 'quantity', 'integer').ok).toBe(false);
    expect(addNestedField(pkg, 'order', ['items'], 'Bad Name', 'integer').ok).toBe(false);
    pkg = ok(removeFieldAt(pkg, 'order', ['items', 'rebate']));
    expect(text(pkg)).toBe(text(chemichemi()));
  });

  it('builds a new array of objects: lines with product, quantity and price', () => {
    let pkg = ok(addNestedField(chemichemi(), 'order', [], 'lines', 'array'));
    expect(fieldAt(order(pkg), ['lines'])).toEqual({ type: 'array', items: { type: 'string' } });
    // Not yet objects: nothing nests.
    expect(addNestedField(pkg, 'order', ['lines'], 'product', 'reference').ok).toBe(false);
    pkg = ok(updateFieldAt(pkg, 'order', ['lines'], changeElementKind({ type: 'array', items: { type: 'string' } }, 'object', 'order')));
    pkg = ok(addNestedField(pkg, 'order', ['lines'], 'product', 'reference'));
    pkg = ok(updateFieldAt(pkg, 'order', ['lines', 'product'], { to: 'product' }));
    pkg = ok(addNestedField(pkg, 'order', ['lines'], 'quantity', 'integer'));
    pkg = ok(addNestedField(pkg, 'order', ['lines'], 'price', 'decimal'));
    expect(fieldAt(order(pkg), ['lines'])).toEqual({
      type: 'array',
      items: { type: 'object', fields: { product: { type: 'reference', to: 'product' }, quantity: { type: 'integer' }, price: { type: 'decimal', scale: 2 } } },
    });
    // An object inside an object.
    pkg = ok(addNestedField(pkg, 'order', ['delivery_address'], 'geo', 'object'));
    pkg = ok(addNestedField(pkg, 'order', ['delivery_address', 'geo'], 'lat', 'number'));
    expect(fieldAt(order(pkg), ['delivery_address', 'geo', 'lat'])).toEqual({ type: 'number' });
    expect(addNestedField(pkg, 'order', ['notes'], 'x', 'string').ok).toBe(false);
    expect(removeFieldAt(pkg, 'order', ['nothing', 'x']).ok).toBe(false);
  });

  it('changes an array’s element kind, clearing what the new kind does not take', () => {
    expect(changeElementKind({ type: 'array', items: { type: 'enum', values: ['a'] } }, 'integer', 't')).toEqual({ items: { type: 'integer' } });
    expect(changeElementKind({ type: 'array', items: { type: 'string' } }, 'enum', 't')).toEqual({ items: { type: 'enum', values: ['value'] } });
    expect(changeElementKind({ type: 'array' }, 'reference', 't')).toEqual({ items: { type: 'reference', to: 't' } });
  });
});
