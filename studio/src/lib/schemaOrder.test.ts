import { describe, expect, it } from 'vitest';
import { inSchemaOrder } from './schemaOrder';

describe('schema order', () => {
  it('lists the declared fields in their order, then the rest', () => {
    const props = { customer_id: {}, warehouse_id: {}, total: {} };
    expect(inSchemaOrder({ total: 5, extra: 1, customer_id: 'c' }, props)).toEqual([
      ['customer_id', 'c'],
      ['total', 5],
      ['extra', 1],
    ]);
    expect(inSchemaOrder({ a: 1 }, undefined)).toEqual([['a', 1]]);
  });
});
