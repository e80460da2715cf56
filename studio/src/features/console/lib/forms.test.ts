import { describe, expect, it } from 'vitest';
import { createSchema, editableFields, editSchema, itemTitle, mergePatch, pick, rebase, serverErrors, serverSideValidator, uiSchemaFor } from './forms';

const order = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['customer_id', 'number'],
  properties: {
    number: { type: 'string', readOnly: true },
    customer_id: { type: 'string', format: 'uuid', 'x-reference': 'customer' },
    address: { type: 'object', properties: { city: { type: 'string' }, geo: { type: 'string', readOnly: true } } },
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['product_id'],
        properties: {
          product_id: { type: 'string', 'x-reference': 'product' },
          line_total: { type: 'number', readOnly: true },
        },
      },
    },
  },
};

describe('generated forms', () => {
  it('leave the generated fields out of a create form, at any depth', () => {
    const s = createSchema(order) as Record<string, unknown>;
    expect(s.$schema).toBeUndefined();
    expect(Object.keys(s.properties as object)).toEqual(['customer_id', 'address', 'items']);
    expect(s.required).toEqual(['customer_id']);
    expect(s).toMatchObject({
      properties: {
        address: { properties: { city: { type: 'string' } } },
        items: { items: { required: ['product_id'], properties: { product_id: { type: 'string' } } } },
      },
    });
    expect(JSON.stringify(s)).not.toContain('readOnly');
  });

  it('label the fields the package gives no label, by their name', () => {
    const s = createSchema(order) as { properties: Record<string, { title?: string; properties?: Record<string, { title?: string }> }> };
    expect(s.properties.customer_id?.title).toBe('Customer id');
    expect(s.properties.address?.properties?.city?.title).toBe('City');
    const labelled = createSchema({ type: 'object', properties: { city: { type: 'string', title: 'Town' } } }) as typeof s;
    expect(labelled.properties.city?.title).toBe('Town');
  });

  it('make references pickers, in nested objects and rows', () => {
    expect(uiSchemaFor(order)).toEqual({
      customer_id: { 'ui:widget': 'reference' },
      items: { items: { product_id: { 'ui:widget': 'reference' } } },
    });
    expect(uiSchemaFor(null)).toEqual({});
  });

  it('offer the users of a user field’s role, at any depth', () => {
    const trip = {
      type: 'object',
      properties: {
        driver_id: { type: 'string', format: 'uuid', 'x-user': { role: 'driver' } },
        crew: { type: 'array', items: { type: 'string', format: 'uuid', 'x-user': { role: null } } },
        notes: { type: 'string' },
      },
    };
    expect(uiSchemaFor(trip)).toEqual({ driver_id: { 'ui:widget': 'user' }, crew: { items: { 'ui:widget': 'user' } } });
  });

  it('show a decimal’s scale as its placeholder', () => {
    const invoice = {
      type: 'object',
      properties: {
        amount: { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]+)?$', 'x-decimal': { precision: 18, scale: 2 } },
        units: { type: 'string', 'x-decimal': { precision: 18, scale: 0 } },
      },
    };
    expect(uiSchemaFor(invoice)).toEqual({ amount: { 'ui:placeholder': '0.00' }, units: { 'ui:placeholder': '0' } });
  });

  it('put the server’s field errors at their fields', () => {
    const details = {
      errors: [
        { path: '/data/items/0/quantity', message: 'must be at least 1' },
        { path: '/data/items/0/quantity', message: 'must be an integer' },
        { path: '/data/a~1b', message: 'odd name' },
        { path: '/data', message: 'must be an object' },
        { path: '/state', message: 'cannot be set' },
      ],
    };
    const { schema, other } = serverErrors(details, '/data');
    expect(schema).toEqual({
      __errors: ['must be an object'],
      items: { 0: { quantity: { __errors: ['must be at least 1', 'must be an integer'] } } },
      'a/b': { __errors: ['odd name'] },
    });
    expect(other).toEqual(['/state: cannot be set']);
    expect(serverErrors(undefined, '/data')).toEqual({ schema: {}, other: [] });
  });

  it('validate nothing but types (no code compiled)', () => {
    expect(serverSideValidator.validateFormData({ x: 1 }, {})).toEqual({ errors: [], errorSchema: {} });
    expect(serverSideValidator.isValid({ type: 'string' }, 'x', {})).toBe(true);
    expect(serverSideValidator.isValid({ type: 'integer' }, 1.5, {})).toBe(false);
    expect(serverSideValidator.isValid({ type: ['string', 'null'] }, null, {})).toBe(true);
    expect(serverSideValidator.isValid({}, 3, {})).toBe(true);
  });
});

describe('edit forms', () => {
  const states = [
    { name: 'DRAFT', editable: { fields: ['notes', 'customer_id', 'number'], roles: ['sales', 'manager'] } },
    { name: 'DONE', editable: null },
  ];

  it('offer the fields the state makes editable for the roles', () => {
    expect(editableFields(states, 'DRAFT', ['sales'])).toEqual(['notes', 'customer_id', 'number']);
    expect(editableFields(states, 'DRAFT', ['viewer'])).toEqual([]);
    expect(editableFields(states, 'DONE', ['sales'])).toEqual([]);
    expect(editableFields(undefined, 'DRAFT', ['sales'])).toEqual([]);
  });

  it('show only those fields, never a generated one', () => {
    const s = editSchema({ ...order, properties: { ...order.properties, notes: { type: 'string' } } }, ['notes', 'customer_id', 'number']);
    expect(Object.keys(s.properties ?? {})).toEqual(['notes', 'customer_id']);
    expect(s.required).toEqual(['customer_id']);
  });

  it('send what changed, null for what was cleared', () => {
    const before = { notes: 'a', customer_id: 'c1', items: [1] };
    expect(pick(before, ['notes', 'missing'])).toEqual({ notes: 'a' });
    expect(mergePatch(before, { notes: 'b', customer_id: 'c1' }, ['notes', 'customer_id'])).toEqual({ notes: 'b' });
    expect(mergePatch(before, { customer_id: 'c1' }, ['notes', 'customer_id'])).toEqual({ notes: null });
    expect(mergePatch(before, before, ['notes', 'customer_id', 'items'])).toEqual({});
  });

  it('keep what was typed over a reloaded version, and take theirs for the rest', () => {
    const base = { notes: 'a', date: '2030-01-01', tax: 1 };
    const typed = { notes: 'mine', date: '2030-01-01' };
    const theirs = { notes: 'theirs', date: '2031-05-05', tax: 1 };
    expect(rebase(base, typed, theirs, ['notes', 'date', 'tax'])).toEqual({ notes: 'mine', date: '2031-05-05' });
    expect(rebase(base, base, theirs, ['notes', 'date', 'tax'])).toEqual(theirs);
  });
});

describe('array item titles', () => {
  it('reads "Line item 1", not "Line items-1"', () => {
    expect(itemTitle('root_items_0__title', 'Line items-1')).toBe('Line item 1');
    expect(itemTitle('root_addresses_2__title', 'Addresses-3')).toBe('Address 3');
    expect(itemTitle('root_deliveries_0__title', 'Deliveries-1')).toBe('Delivery 1');
    expect(itemTitle('root_data_0__title', 'Data-1')).toBe('Data 1');
    expect(itemTitle('root_batches_0__title', 'Batches-2')).toBe('Batch 2');
    expect(itemTitle('root_class_0__title', 'Class-1')).toBe('Class 1');
    // Not an item's title: kept.
    expect(itemTitle('root_address__title', 'Line-2')).toBe('Line-2');
    expect(itemTitle('root_items_0__title', 'Items')).toBe('Items');
  });
});
