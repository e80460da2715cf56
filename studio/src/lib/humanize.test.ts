import { describe, expect, it } from 'vitest';
import { humanize } from './humanize';

describe('humanize', () => {
  it('turns a snake_case field name into a label', () => {
    expect(humanize('postal_code')).toBe('Postal code');
    expect(humanize('city')).toBe('City');
    expect(humanize('')).toBe('');
  });
});
