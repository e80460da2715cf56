// The signed-in session: the access token in memory only (never in storage a script could read
// later), the refresh token in an HttpOnly cookie the server sets in cookie mode
// (`X-Refresh-Mode: cookie`) and only the auth routes receive. The token is refreshed a minute
// before it expires, after a 401, and at start-up (a reload keeps the session through the
// cookie).

import { ApiError, parseEnvelope } from '../lib/envelope';
import { decodeClaims, refreshDelayMs, type AccessClaims } from '../lib/token';

export interface Session {
  accessToken: string;
  claims: AccessClaims;
  /** When the access token expires (ms since the epoch, by this clock). */
  expiresAt: number;
}

/** `unknown` until the first refresh attempt at start-up has answered. */
export type SessionState = { status: 'unknown' } | { status: 'anonymous' } | { status: 'signed-in'; session: Session };

const COOKIE_MODE = { 'X-Refresh-Mode': 'cookie' } as const;
const AUTH = '/api/v1/auth';

let state: SessionState = { status: 'unknown' };
const listeners = new Set<() => void>();
let timer: ReturnType<typeof setTimeout> | undefined;
let inflight: Promise<Session | null> | null = null;

function set(next: SessionState): void {
  state = next;
  for (const l of listeners) l();
}

export function getSessionState(): SessionState {
  return state;
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function accessToken(): string | null {
  return state.status === 'signed-in' ? state.session.accessToken : null;
}

interface TokenAnswer {
  access_token: string;
  expires_in: number;
}

async function postAuth(path: string, body: unknown, bearer?: string): Promise<Response> {
  const headers: Record<string, string> = { ...COOKIE_MODE, 'Content-Type': 'application/json' };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  return fetch(`${AUTH}/${path}`, {
    method: 'POST',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
}

async function failure(response: Response): Promise<ApiError> {
  const body: unknown = await response.json().catch(() => null);
  return new ApiError(response.status, parseEnvelope(response.status, body));
}

function start(answer: TokenAnswer): Session {
  const claims = decodeClaims(answer.access_token);
  if (!claims) throw new ApiError(500, { code: 'BAD_TOKEN', message: 'The server answered a token the studio cannot read.' });
  const now = Date.now();
  const session = { accessToken: answer.access_token, claims, expiresAt: now + answer.expires_in * 1000 };
  clearTimeout(timer);
  timer = setTimeout(() => void refresh(), refreshDelayMs(answer.expires_in, now, now));
  set({ status: 'signed-in', session });
  return session;
}

function end(): void {
  clearTimeout(timer);
  timer = undefined;
  set({ status: 'anonymous' });
}

/** Signs in; throws an [`ApiError`] with the server's message when refused. */
export async function login(tenant: string, email: string, password: string): Promise<Session> {
  const response = await postAuth('login', { tenant, email, password });
  if (!response.ok) throw await failure(response);
  return start((await response.json()) as TokenAnswer);
}

/**
 * Runs `f` while holding the browser-wide lock of refreshes, where there is one (Web Locks): tabs
 * share the cookie, and two tabs spending the same refresh token at once (a browser restoring
 * its tabs) would look like a stolen token to the server, which then ends the session. Holding
 * the lock, the second tab sends the cookie the first one's refresh left.
 */
async function exclusively<T>(f: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: Partial<Navigator> }).navigator?.locks;
  return locks ? locks.request('switchyard-refresh', f) : f();
}

/**
 * A new access token from the cookie, or null (and signed out) when the session is over. One
 * refresh at a time: concurrent callers share it (a refresh token can be spent only once), and
 * tabs take turns.
 */
export function refresh(): Promise<Session | null> {
  inflight ??= (async () => {
    try {
      const response = await exclusively(() => postAuth('refresh', undefined));
      if (!response.ok) {
        end();
        return null;
      }
      return start((await response.json()) as TokenAnswer);
    } catch {
      // The server cannot be reached: keep what we have, try again on the next call.
      if (state.status === 'unknown') set({ status: 'anonymous' });
      return null;
    } finally {
      inflight = null;
    }
  })();
  return inflight;
}

/** Ends the session on the server (and the cookie), then here, whatever the server said. */
export async function logout(): Promise<void> {
  try {
    await postAuth('logout', undefined, accessToken() ?? undefined);
  } finally {
    end();
  }
}
