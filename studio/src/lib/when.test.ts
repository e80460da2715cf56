import { describe, expect, it } from 'vitest';
import { fullDateTime, shortDateTime, shortDateTimeParts } from './when';

describe('when', () => {
  it('shows an instant shortly, without seconds, and in full with them', () => {
    const iso = '2026-12-03T18:37:42Z';
    const short = shortDateTime(iso, 'en-US');
    expect(short).toMatch(/^Dec \d, 2026, \d{1,2}:\d{2}\s?[AP]M$/);
    expect(short).not.toMatch(/:42/);
    expect(fullDateTime(iso, 'en-US')).toMatch(/:42/);
  });

  it('splits an instant into its day and its time of day, which together are the short text', () => {
    const iso = '2026-12-03T18:37:42Z';
    const parts = shortDateTimeParts(iso, 'en-US');
    expect(parts).not.toBeNull();
    expect(parts?.date).toMatch(/^Dec \d, 2026$/);
    expect(parts?.sep).toBe(', ');
    expect(parts?.time).toMatch(/^\d{1,2}:\d{2}\s?[AP]M$/);
    expect([parts?.date, parts?.sep, parts?.time].join('')).toBe(shortDateTime(iso, 'en-US'));
    for (const locale of ['de-DE', 'fr-FR', 'ja-JP', 'sw-KE']) {
      const p = shortDateTimeParts(iso, locale);
      expect([p?.date, p?.sep, p?.time].join(''), locale).toBe(shortDateTime(iso, locale));
    }
    expect(shortDateTimeParts('soon')).toBeNull();
  });

  it('leaves what is not a date as it is', () => {
    expect(shortDateTime('soon')).toBe('soon');
    expect(fullDateTime('')).toBe('');
  });
});
