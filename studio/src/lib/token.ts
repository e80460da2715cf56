// Access tokens as the studio needs them: who they name (for display only: the server checks
// them) and when to refresh them.

export interface AccessClaims {
  /** The user's id. */
  sub: string;
  /** The tenant's slug. */
  ten: string;
  email: string;
  roles: string[];
  /** Expiry, seconds since the epoch. */
  exp: number;
}

function base64UrlDecode(part: string): string {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The claims of a JWT access token, or null when it is not one. Nothing is verified. */
export function decodeClaims(token: string): AccessClaims | null {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const c = JSON.parse(base64UrlDecode(parts[1])) as Record<string, unknown>;
    if (typeof c.sub !== 'string' || typeof c.ten !== 'string' || typeof c.exp !== 'number') return null;
    const roles = Array.isArray(c.roles) ? c.roles.filter((r): r is string => typeof r === 'string') : [];
    return { sub: c.sub, ten: c.ten, email: typeof c.email === 'string' ? c.email : '', roles, exp: c.exp };
  } catch {
    return null;
  }
}

/** Refresh this long before the token expires (clocks drift, requests take time). */
export const REFRESH_MARGIN_MS = 60_000;
/** Never schedule sooner than this (a very short token must not loop). */
export const MIN_REFRESH_DELAY_MS = 5_000;

/**
 * How long to wait before refreshing a token that lives `expiresInSecs` from `issuedAtMs`, seen
 * at `nowMs`: a margin before expiry, at least 80% of its life, never negative or below the floor.
 */
export function refreshDelayMs(expiresInSecs: number, issuedAtMs: number, nowMs: number): number {
  const lifeMs = Math.max(0, expiresInSecs * 1000);
  const lead = Math.min(REFRESH_MARGIN_MS, lifeMs * 0.2);
  const dueAt = issuedAtMs + lifeMs - lead;
  return Math.max(MIN_REFRESH_DELAY_MS, dueAt - nowMs);
}

/** Whether a token expiring at `expiresAtMs` should no longer be sent at `nowMs`. */
export function isExpired(expiresAtMs: number, nowMs: number, skewMs = 5_000): boolean {
  return nowMs >= expiresAtMs - skewMs;
}
