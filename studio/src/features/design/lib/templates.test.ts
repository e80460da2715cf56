import { describe, expect, it } from 'vitest';
import { findType } from './model';
import { chemichemi, examplePackages } from './testPackages';
import { sampleEntity, templateErrorPlace } from './templates';

describe('template samples', () => {
  it('gives every field of every example type a value, nested ones too', () => {
    for (const [, pkg] of examplePackages()) {
      for (const t of pkg.types) {
        const data = sampleEntity(t);
        expect(Object.keys(data).sort()).toEqual(Object.keys(t.fields ?? {}).sort());
      }
    }
    const order = findType(chemichemi(), 'order');
    if (!order) throw new Error('no order');
    const data = sampleEntity(order);
    expect(data.order_number).toBe('ORD-2026-000123');
    expect(data.order_type).toBe('standard');
    expect(data.total_amount).toBe(0);
    const items = data.items as Record<string, unknown>[];
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ quantity: 7, unit_price: '1234.50' });
    expect(typeof items[0]?.product_id).toBe('string');
    expect((data.delivery_address as Record<string, unknown>).city).toBe('sample city');
  });

  it('says where a template error is', () => {
    expect(templateErrorPlace({ path: '/template', line: 2, column: 4 })).toBe(' (line 2, column 4)');
    expect(templateErrorPlace({ path: '/template', line: 1, column: null })).toBe(' (line 1)');
    expect(templateErrorPlace({ line: null })).toBe('');
    expect(templateErrorPlace(undefined)).toBe('');
  });
});
