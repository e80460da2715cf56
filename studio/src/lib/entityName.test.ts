import { describe, expect, it } from 'vitest';
import { entityName } from './entityName';

describe('entityName', () => {
  it('prefers the display title, then a number or name field, then the id', () => {
    expect(entityName({ id: 'abcdef123456', display: 'Shown', data: { name: 'n' } })).toBe('Shown');
    expect(entityName({ id: 'abcdef123456', data: { notes: 'x', order_number: 'ORD-1' } })).toBe('ORD-1');
    expect(entityName({ id: 'abcdef123456', data: { name: 'Acme' } })).toBe('Acme');
    expect(entityName({ id: 'abcdef123456', data: { name: 3 } })).toBe('abcdef12');
  });
});
