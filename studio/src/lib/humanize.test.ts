import { describe, expect, it } from 'vitest';
import { humanize } from './humanize';

describe('humanize', () => {
  it('turns a snake_case field name into a label', () => {
    expect(humanize('postal_code')).toBe('Postal code');
    expect(humanize('city')).toBe('City');
    expect(humanize('')).toBe('');
  });

  it('turns state and transition names into labels', () => {
    expect(humanize('PENDING_APPROVAL')).toBe('Pending approval');
    expect(humanize('IN_TRANSIT')).toBe('In transit');
    expect(humanize('approveOrder')).toBe('Approve order');
    expect(humanize('allocateInventory')).toBe('Allocate inventory');
  });
});
