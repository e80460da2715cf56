import { describe, expect, it } from 'vitest';
import { loginPath, paths, safeNext } from './urls';

describe('paths', () => {
  it('encodes segments', () => {
    expect(paths.home('chemichemi')).toBe('/t/chemichemi');
    expect(paths.type('a b', 'x/y')).toBe('/t/a%20b/types/x%2Fy');
  });
});

describe('safeNext', () => {
  it('keeps the studio’s own paths', () => {
    expect(safeNext('/t/chemichemi/types/order?x=1')).toBe('/t/chemichemi/types/order?x=1');
  });

  it('refuses other sites and other pages', () => {
    for (const bad of ['//evil.test/t/', 'https://evil.test', '/login', '/t\\..', '', null]) {
      expect(safeNext(bad)).toBeNull();
    }
  });
});

describe('loginPath', () => {
  it('remembers a safe destination only', () => {
    expect(loginPath('/t/acme')).toBe('/login?next=%2Ft%2Facme');
    expect(loginPath('https://evil.test')).toBe('/login');
    expect(loginPath()).toBe('/login');
  });
});
