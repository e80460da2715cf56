import { describe, expect, it } from 'vitest';
import { comparison, defaultMessage, guardVariables, parseRule, parseValue } from './guards';

describe('guards', () => {
  it('types values as JSON', () => {
    expect(parseValue('1000')).toBe(1000);
    expect(parseValue(' 2.5 ')).toBe(2.5);
    expect(parseValue('true')).toBe(true);
    expect(parseValue('null')).toBeNull();
    expect(parseValue('ACTIVE')).toBe('ACTIVE');
    expect(parseValue('')).toBe('');
  });

  it('builds a comparison and a message', () => {
    expect(comparison('entity.total_amount', '>', '1000')).toEqual({ '>': [{ var: 'entity.total_amount' }, 1000] });
    expect(defaultMessage('entity.total_amount', '>', '1000')).toBe('total_amount must be greater than 1000');
    expect(defaultMessage('entity.kind', '==', 'x')).toBe('kind must equal x');
    expect(defaultMessage('entity.n', '>=', '2')).toBe('n must be at least 2');
  });

  it('offers the entity’s fields, its state and the actor', () => {
    expect(guardVariables({ name: 't', fields: { a: {}, b: {} } })).toEqual(['entity.a', 'entity.b', 'entity.state', 'actor.id']);
  });

  it('parses rules or says why not', () => {
    expect(parseRule('{"==": [1, 1]}')).toEqual({ ok: true, rule: { '==': [1, 1] } });
    const bad = parseRule('{"==": [1,');
    expect(bad.ok).toBe(false);
  });
});
