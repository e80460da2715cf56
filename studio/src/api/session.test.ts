import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// The session and the client against a stubbed `fetch`: what is sent, when it refreshes.

function jwt(exp: number): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256' })}.${enc({ sub: 'u1', ten: 'acme', email: 'a@acme.test', roles: [], exp })}.sig`;
}

const tokens = (access: string) => ({ access_token: access, token_type: 'Bearer', expires_in: 900, refresh_expires_in: 2592000 });
const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const unauthorized = () => json(401, { error: { code: 'UNAUTHORIZED', message: 'expired' } });

interface Call {
  url: string;
  auth: string | null;
  mode: string | null;
}

let calls: Call[];
let answer: (url: string, auth: string | null) => Response;

async function freshSession() {
  vi.resetModules();
  const session = await import('./session');
  const client = await import('./client');
  return { session, api: client.api };
}

beforeEach(() => {
  calls = [];
  vi.useFakeTimers();
  vi.stubGlobal('location', { origin: 'http://studio.test' });
  vi.stubGlobal('fetch', (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), 'http://studio.test'), init);
    const call = { url: new URL(request.url).pathname, auth: request.headers.get('authorization'), mode: request.headers.get('x-refresh-mode') };
    calls.push(call);
    return Promise.resolve(answer(call.url, call.auth));
  });
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('the session', () => {
  it('signs in in cookie mode and sends the access token', async () => {
    const { session, api } = await freshSession();
    answer = (url) => (url === '/api/v1/auth/login' ? json(200, tokens(jwt(1))) : json(200, { version: 1, data: [] }));
    const s = await session.login('acme', 'a@acme.test', 'pw');
    expect(s.claims.ten).toBe('acme');
    expect(calls[0]).toEqual({ url: '/api/v1/auth/login', auth: null, mode: 'cookie' });
    await api.GET('/api/v1/t/{tenant}/types', { params: { path: { tenant: 'acme' } } });
    expect(calls[1]).toEqual({ url: '/api/v1/t/acme/types', auth: `Bearer ${jwt(1)}`, mode: null });
  });

  it('refreshes a minute before the token expires', async () => {
    const { session } = await freshSession();
    answer = (url) => json(200, tokens(jwt(url.endsWith('login') ? 1 : 2)));
    await session.login('acme', 'a@acme.test', 'pw');
    await vi.advanceTimersByTimeAsync(839_000);
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/auth/login']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/auth/login', '/api/v1/auth/refresh']);
    expect(session.accessToken()).toBe(jwt(2));
  });

  it('after a 401, refreshes once and retries with the new token', async () => {
    const { session, api } = await freshSession();
    answer = (url, auth) => {
      if (url === '/api/v1/auth/login') return json(200, tokens(jwt(1)));
      if (url === '/api/v1/auth/refresh') return json(200, tokens(jwt(2)));
      return auth === `Bearer ${jwt(2)}` ? json(200, { id: 'u1' }) : unauthorized();
    };
    await session.login('acme', 'a@acme.test', 'pw');
    const [a, b] = await Promise.all([api.GET('/api/v1/auth/me'), api.GET('/api/v1/auth/me')]);
    expect([a.response.status, b.response.status]).toEqual([200, 200]);
    // Two requests refused, one refresh shared by both (a refresh token can be spent once).
    expect(calls.filter((c) => c.url === '/api/v1/auth/refresh')).toHaveLength(1);
  });

  it('signs out when the refresh is refused', async () => {
    const { session, api } = await freshSession();
    answer = (url) => (url === '/api/v1/auth/login' ? json(200, tokens(jwt(1))) : unauthorized());
    await session.login('acme', 'a@acme.test', 'pw');
    const r = await api.GET('/api/v1/auth/me');
    expect(r.response.status).toBe(401);
    expect(session.getSessionState()).toEqual({ status: 'anonymous' });
  });

  it('starts from the cookie, or signed out', async () => {
    const { session } = await freshSession();
    expect(session.getSessionState()).toEqual({ status: 'unknown' });
    answer = () => unauthorized();
    expect(await session.refresh()).toBeNull();
    expect(session.getSessionState()).toEqual({ status: 'anonymous' });
    answer = () => json(200, tokens(jwt(3)));
    expect((await session.refresh())?.accessToken).toBe(jwt(3));
    expect(calls.every((c) => c.mode === 'cookie')).toBe(true);
  });

  it('logs out on the server with the token, and forgets it whatever the answer', async () => {
    const { session } = await freshSession();
    answer = (url) => (url === '/api/v1/auth/login' ? json(200, tokens(jwt(1))) : json(500, {}));
    await session.login('acme', 'a@acme.test', 'pw');
    await session.logout();
    expect(calls[1]).toEqual({ url: '/api/v1/auth/logout', auth: `Bearer ${jwt(1)}`, mode: 'cookie' });
    expect(session.getSessionState()).toEqual({ status: 'anonymous' });
  });
});
