import { describe, expect, it } from 'vitest';
import { decodeClaims, isExpired, MIN_REFRESH_DELAY_MS, refreshDelayMs } from './token';

function jwt(payload: object): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256' })}.${enc(payload)}.sig`;
}

describe('decodeClaims', () => {
  it('reads the claims the studio shows', () => {
    const t = jwt({ sub: 'u1', ten: 'chemichemi', email: 'ä@x.test', roles: ['admin', 3], exp: 100 });
    expect(decodeClaims(t)).toEqual({ sub: 'u1', ten: 'chemichemi', email: 'ä@x.test', roles: ['admin'], exp: 100 });
  });

  it('refuses what is not an access token', () => {
    expect(decodeClaims('nope')).toBeNull();
    expect(decodeClaims('a.b.c')).toBeNull();
    expect(decodeClaims(jwt({ sub: 'u1' }))).toBeNull();
  });
});

describe('refreshDelayMs', () => {
  it('refreshes a minute before a 15 minute token expires', () => {
    expect(refreshDelayMs(900, 0, 0)).toBe(840_000);
  });

  it('counts from when the token was issued', () => {
    expect(refreshDelayMs(900, 0, 40_000)).toBe(800_000);
  });

  it('keeps 80% of a short life', () => {
    expect(refreshDelayMs(100, 0, 0)).toBe(80_000);
  });

  it('never goes below the floor', () => {
    expect(refreshDelayMs(900, 0, 10_000_000)).toBe(MIN_REFRESH_DELAY_MS);
    expect(refreshDelayMs(0, 0, 0)).toBe(MIN_REFRESH_DELAY_MS);
  });
});

describe('isExpired', () => {
  it('allows for clock skew', () => {
    expect(isExpired(10_000, 4_000)).toBe(false);
    expect(isExpired(10_000, 5_000)).toBe(true);
  });
});
