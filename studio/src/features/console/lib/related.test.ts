import { describe, expect, it } from 'vitest';
import { referrers, relatedQuery } from './related';

const list = (...names: string[]) => ({ get: { parameters: names.map((name) => ({ name })) } });
const doc = {
  paths: {
    '/api/v1/t/acme/entities/order': list('state', 'state[in]', 'trip_id', 'trip_id[in]', 'customer_id', 'customer_id[in]'),
    '/api/v1/t/acme/entities/variance': list('order_id', 'order_id[in]'),
    '/api/v1/t/acme/entities/trip': list('state[in]'),
  },
};
const types = [
  {
    name: 'order',
    label: 'Order',
    schema: {
      properties: {
        trip_id: { 'x-reference': 'trip', title: 'Trip' },
        customer_id: { 'x-reference': 'customer' },
        price_list_id: { 'x-reference': 'price_list' },
      },
    },
  },
  // `order_ids` refers to orders but cannot be filtered on: not listed.
  { name: 'trip', label: 'Trip', schema: { properties: { order_ids: { 'x-reference': 'order' } } } },
  { name: 'variance', label: null, schema: { properties: { order_id: { 'x-reference': 'order' } } } },
];

describe('related entities', () => {
  it('finds the filterable fields of any type that refer to a type', () => {
    expect(referrers(types, doc, 'acme', 'trip')).toEqual([{ type: 'order', typeLabel: 'Order', field: 'trip_id', fieldLabel: 'Trip' }]);
    expect(referrers(types, doc, 'acme', 'order')).toEqual([{ type: 'variance', typeLabel: 'Variance', field: 'order_id', fieldLabel: 'Order id' }]);
    expect(referrers(types, doc, 'acme', 'customer')).toEqual([
      { type: 'order', typeLabel: 'Order', field: 'customer_id', fieldLabel: 'Customer id' },
    ]);
    expect(referrers(types, doc, 'acme', 'price_list')).toEqual([]);
    expect(referrers(types, null, 'acme', 'trip')).toEqual([]);
  });

  it('links to the list filtered by the entity', () => {
    expect(relatedQuery({ type: 'order', typeLabel: 'Order', field: 'trip_id', fieldLabel: 'Trip' }, 'abc')).toBe('trip_id%5Bin%5D=abc');
  });
});
