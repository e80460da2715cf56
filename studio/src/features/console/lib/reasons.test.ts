import { describe, expect, it } from 'vitest';
import { reasonText } from './reasons';

describe('reasonText', () => {
  const base = { allowed: false, role_allowed: true, roles: ['manager'], guards: [] };
  it('says why not', () => {
    expect(reasonText({ ...base, allowed: true })).toBeNull();
    expect(reasonText({ ...base, role_allowed: false, roles: ['manager', 'admin'] })).toBe('Only manager, admin may do this.');
    expect(reasonText({ ...base, reason: 'guard', guards: [{ passed: true, message: 'a' }, { passed: false, message: 'Too big' }] })).toBe(
      'Too big',
    );
    expect(reasonText({ ...base, reason: 'four_eyes', guards: [{ passed: false, message: 'Not the creator' }] })).toBe(
      'Not the creator',
    );
    expect(reasonText({ ...base, reason: 'four_eyes' })).toBe('Someone else must do this (four-eyes).');
    expect(reasonText(base)).toBe('Not possible now.');
  });
});
