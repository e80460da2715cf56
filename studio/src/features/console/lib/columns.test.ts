import { describe, expect, it } from 'vitest';
import { cell, columns, groupDigits, isNumeric, nextSort, readListQuery, sortKeys, titleOnOneLine, valueText } from './columns';

const doc = {
  paths: {
    '/api/v1/t/acme/entities/order': {
      get: { parameters: [{ name: 'q' }, { name: 'sort', schema: { enum: ['id', '-id', 'total', '-total'] } }] },
    },
  },
};

describe('list columns', () => {
  it('reads the sort keys of a type from the tenant document', () => {
    expect(sortKeys(doc, 'acme', 'order')).toEqual(['id', 'total']);
    expect(sortKeys(doc, 'acme', 'trip')).toEqual([]);
    expect(sortKeys(null, 'acme', 'order')).toEqual([]);
  });

  it('tells numbers (number, integer, nullable or not, decimal strings) from other fields', () => {
    expect(isNumeric({ type: 'integer' })).toBe(true);
    expect(isNumeric({ type: ['number', 'null'] })).toBe(true);
    expect(isNumeric({ type: 'string', 'x-decimal': { precision: 18, scale: 2 } })).toBe(true);
    expect(isNumeric({ type: 'string' })).toBe(false);
    expect(isNumeric({ type: 'string', format: 'date' })).toBe(false);
    expect(isNumeric({ type: 'boolean' })).toBe(false);
    expect(isNumeric(undefined)).toBe(false);
  });

  it('takes scalar fields, sortable first, labelled by their titles', () => {
    const schema = {
      properties: {
        notes: { type: 'string' },
        items: { type: 'array' },
        customer_id: { type: 'string', format: 'uuid', 'x-reference': 'customer', title: 'Customer' },
        total: { type: ['number', 'null'], title: 'Total' },
        paid: { type: 'string', 'x-decimal': { precision: 18, scale: 2 }, title: 'Paid' },
        driver_id: { type: 'string', format: 'uuid', 'x-user': { role: 'driver' }, title: 'Driver' },
      },
    };
    expect(columns(schema, ['total'], 5)).toEqual([
      { field: 'total', label: 'Total', sortable: true, reference: null, user: false, numeric: true, decimal: false },
      { field: 'notes', label: 'Notes', sortable: false, reference: null, user: false, numeric: false, decimal: false },
      { field: 'customer_id', label: 'Customer', sortable: false, reference: 'customer', user: false, numeric: false, decimal: false },
      { field: 'paid', label: 'Paid', sortable: false, reference: null, user: false, numeric: true, decimal: true },
      { field: 'driver_id', label: 'Driver', sortable: false, reference: null, user: true, numeric: false, decimal: false },
    ]);
    expect(columns(schema, [], 1)).toHaveLength(1);
  });

  it('leave out a field that says nothing on the page (the title again, or nothing), so another takes its place', () => {
    const schema = { properties: { order_number: { type: 'string' }, notes: { type: 'string' }, total: { type: 'number' } } };
    const rows = [
      { display: 'ORD-1', data: { order_number: 'ORD-1', notes: 'x' } },
      { display: 'ORD-2', data: { order_number: 'ORD-2' } },
    ];
    expect(columns(schema, [], 2, rows).map((c) => c.field)).toEqual(['notes']);
    // Once a row's title is something else, the field says something of its own.
    const other = [...rows, { display: 'Rush order', data: { order_number: 'ORD-3', total: 5 } }];
    expect(columns(schema, [], 2, other).map((c) => c.field)).toEqual(['order_number', 'notes']);
    expect(columns(schema, [], 2, []).map((c) => c.field)).toEqual(['order_number', 'notes']);
    // A field empty on every row is left out too, unless its header sorts the list.
    const empty = [{ display: 'A', data: { order_number: 'ORD-1' } }];
    expect(columns(schema, [], 3, empty).map((c) => c.field)).toEqual(['order_number']);
    expect(columns(schema, ['total'], 3, empty).map((c) => c.field)).toEqual(['total', 'order_number']);
  });

  it('keeps the list in the URL and cycles sorts', () => {
    expect(readListQuery(new URLSearchParams('q=gas&sort=total&cursor=abc'))).toEqual({ q: 'gas', sort: 'total', cursor: 'abc' });
    expect(readListQuery(new URLSearchParams(''))).toEqual({ q: '', sort: '-created_at', cursor: null });
    expect(nextSort('total', 'total')).toBe('-total');
    expect(nextSort('-total', 'total')).toBe('total');
    expect(cell(null)).toBe('');
    expect(cell({ a: 1 })).toBe('{"a":1}');
    expect(cell(true)).toBe('Yes');
    expect(cell(false)).toBe('No');
    expect(cell(0)).toBe('0');
  });
});

describe('titleOnOneLine', () => {
  it('keeps numbers and short names on one line and lets long titles wrap', () => {
    expect(titleOnOneLine('ORD-2026-000001')).toBe(true);
    expect(titleOnOneLine('NBO-MAIN Nairobi Main Dep')).toBe(false);
    expect(titleOnOneLine('x'.repeat(24))).toBe(true);
    expect(titleOnOneLine('Stock of LPG-6KG-R LPG 6 kg refill in NBO-MAIN Nairobi Main Depot')).toBe(false);
    // Characters as a reader counts them, not UTF-16 units: 24 flags are 24 characters.
    expect(titleOnOneLine('🇰🇪'.repeat(24))).toBe(true);
    expect(titleOnOneLine('🇰🇪'.repeat(25))).toBe(false);
  });
});

describe('decimals', () => {
  it('group the digits of their whole part, exactly', () => {
    expect(groupDigits('1300.00')).toBe('1,300.00');
    expect(groupDigits('-1234567.891')).toBe('-1,234,567.891');
    expect(groupDigits('999')).toBe('999');
    expect(groupDigits('0.50')).toBe('0.50');
    // Beyond a float's precision: the string's own digits.
    expect(groupDigits('12345678901234567890.12')).toBe('12,345,678,901,234,567,890.12');
    // Anything that is not a plain decimal is left as it is.
    expect(groupDigits('1e5')).toBe('1e5');
    expect(groupDigits('')).toBe('');
  });

  it('are grouped where the schema says decimal, and nothing else is', () => {
    const amount = { type: 'string', 'x-decimal': { precision: 18, scale: 2 } };
    expect(valueText(amount, '25000.00')).toBe('25,000.00');
    expect(valueText({ type: 'integer' }, 2026)).toBe('2026');
    expect(valueText({ type: 'string' }, '10000')).toBe('10000');
    expect(valueText(undefined, null)).toBe('');
  });
});
