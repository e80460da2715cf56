import { describe, expect, it } from 'vitest';
import {
  activeCount,
  bulkFilter,
  clearFilters,
  filterSpecs,
  fromLocalInput,
  readFilters,
  splitIn,
  toLocalInput,
  toggleIn,
  withFilter,
} from './filters';

const param = (name: string, schema: Record<string, unknown>) => ({ name, in: 'query', schema });
const ranges = (name: string, schema: Record<string, unknown>) =>
  ['', '[gt]', '[gte]', '[lt]', '[lte]', '[in]'].map((op) => param(`${name}${op}`, schema));

// The parameters the server writes for a list (api::openapi::filters), for an order type.
const doc = {
  paths: {
    '/api/v1/t/acme/entities/order': {
      get: {
        parameters: [
          param('id', { type: 'string', format: 'uuid' }),
          param('state', { type: 'string', enum: ['DRAFT', 'DONE'] }),
          param('state[in]', { type: 'array', items: { enum: ['DRAFT', 'DONE'] } }),
          ...ranges('created_at', { type: 'string', format: 'date-time' }),
          param('customer_id', { type: 'string', format: 'uuid' }),
          param('customer_id[in]', { type: 'array' }),
          param('customer_id[null]', { type: 'boolean' }),
          ...ranges('amount', { type: 'number' }),
          ...ranges('balance', { type: 'string', pattern: '^[-+]?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' }),
          ...ranges('due', { type: 'string', format: 'date' }),
          param('priority', { type: 'string', enum: ['high', 'low'] }),
          param('priority[in]', { type: 'array' }),
          param('urgent', { type: 'boolean' }),
          param('urgent[in]', { type: 'array' }),
          ...ranges('driver', { type: 'string', maxLength: 200 }),
          param('owner', { anyOf: [{ type: 'string', format: 'uuid' }, { type: 'string', enum: ['me'] }] }),
          param('q', { type: 'string' }),
          param('sort', { type: 'string', enum: ['id', '-id'] }),
          param('limit', { type: 'integer' }),
          param('cursor', { type: 'string' }),
          param('total', { type: 'boolean' }),
        ],
      },
    },
  },
};
const schema = {
  properties: {
    customer_id: { type: 'string', format: 'uuid', 'x-reference': 'customer', title: 'Customer' },
    amount: { type: 'number', title: 'Amount' },
    balance: { type: 'string', 'x-decimal': { precision: 18, scale: 2 }, title: 'Balance' },
    due: { type: 'string', format: 'date' },
    priority: { type: 'string', enum: ['high', 'low'] },
    urgent: { type: 'boolean' },
    driver: { type: 'string' },
    owner: { type: 'string', format: 'uuid', 'x-user': { role: 'sales' }, title: 'Owner' },
  },
};

describe('list filters', () => {
  it('derives one filter per filterable field, by kind, from the document and the schema', () => {
    const specs = filterSpecs(doc, 'acme', 'order', schema);
    expect(specs.map((s) => [s.field, s.kind, s.label])).toEqual([
      ['state', 'multi', 'State'],
      ['created_at', 'range', 'Created'],
      ['customer_id', 'reference', 'Customer'],
      ['amount', 'range', 'Amount'],
      ['balance', 'range', 'Balance'],
      ['due', 'range', 'Due'],
      ['priority', 'multi', 'Priority'],
      ['urgent', 'boolean', 'Urgent'],
      ['driver', 'text', 'Driver'],
      ['owner', 'text', 'Owner'],
    ]);
    expect(specs[0]?.values).toEqual(['DRAFT', 'DONE']);
    expect(specs.map((s) => s.format)).toEqual([null, 'date-time', null, 'number', 'number', 'date', null, null, null, null]);
    expect(specs[2]?.reference).toBe('customer');
    expect(filterSpecs(doc, 'acme', 'trip', schema)).toEqual([]);
    expect(filterSpecs(null, 'acme', 'order', schema)).toEqual([]);
  });

  it('reads only the filters of the specs from the URL, in the API syntax', () => {
    const specs = filterSpecs(doc, 'acme', 'order', schema);
    const url = new URLSearchParams('q=x&sort=-id&state[in]=DRAFT,DONE&amount[gte]=10&amount[gt]=3&urgent=true&bogus=1&driver=');
    expect(readFilters(url, specs)).toEqual({ 'state[in]': 'DRAFT,DONE', 'amount[gte]': '10', urgent: 'true' });
    expect(activeCount(readFilters(url, specs), specs)).toBe(3);
  });

  it('sets and clears filters, back on the first page, keeping search and sort', () => {
    const specs = filterSpecs(doc, 'acme', 'order', schema);
    const url = new URLSearchParams('q=x&sort=-id&cursor=abc&state[in]=DRAFT');
    const set = withFilter(url, 'amount[lte]', '99');
    expect(set.get('amount[lte]')).toBe('99');
    expect(set.has('cursor')).toBe(false);
    expect(withFilter(set, 'amount[lte]', '').has('amount[lte]')).toBe(false);
    const cleared = clearFilters(set, specs);
    expect([...cleared.keys()]).toEqual(['q', 'sort']);
  });

  it('toggles the values of an [in] filter', () => {
    expect(splitIn('A,B')).toEqual(['A', 'B']);
    expect(splitIn('')).toEqual([]);
    expect(splitIn(null)).toEqual([]);
    expect(toggleIn('A', 'B', true)).toBe('A,B');
    expect(toggleIn('A,B', 'A', false)).toBe('B');
    expect(toggleIn('A', 'A', false)).toBeNull();
    expect(toggleIn(undefined, 'A', true)).toBe('A');
    expect(toggleIn('A', 'A', true)).toBe('A');
  });

  it('round-trips a date-time bound through a datetime-local input', () => {
    const iso = fromLocalInput('2026-03-04T05:06');
    expect(iso).toMatch(/^2026-03-0[345]T\d\d:06:00\.000Z$/);
    expect(toLocalInput(iso ?? '')).toBe('2026-03-04T05:06');
    expect(fromLocalInput('')).toBeNull();
    expect(toLocalInput('nonsense')).toBe('');
    expect(toLocalInput(undefined)).toBe('');
  });

  it('turns the filters into a bulk transition filter', () => {
    expect(bulkFilter({ 'state[in]': 'A,B', 'amount[gte]': '10' }, 'acme')).toEqual({
      'state[in]': ['A', 'B'],
      'amount[gte]': '10',
      q: 'acme',
    });
    expect(bulkFilter({}, '')).toEqual({});
  });
});
