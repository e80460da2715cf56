import { describe, expect, it } from 'vitest';
import { fullDateTime, shortDateTime } from './when';

describe('when', () => {
  it('shows an instant shortly, without seconds, and in full with them', () => {
    const iso = '2026-12-03T18:37:42Z';
    const short = shortDateTime(iso, 'en-US');
    expect(short).toMatch(/^Dec \d, 2026, \d{1,2}:\d{2}\s?[AP]M$/);
    expect(short).not.toMatch(/:42/);
    expect(fullDateTime(iso, 'en-US')).toMatch(/:42/);
  });

  it('leaves what is not a date as it is', () => {
    expect(shortDateTime('soon')).toBe('soon');
    expect(fullDateTime('')).toBe('');
  });
});
