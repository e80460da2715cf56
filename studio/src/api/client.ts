// The API client: paths and bodies typed from the server's OpenAPI document (schema.d.ts,
// generated), the access token added to every call, and one refresh-and-retry after a 401.

import createClient from 'openapi-fetch';
import { ApiError, parseEnvelope } from '../lib/envelope';
import type { components, paths } from './schema';
import { accessToken, refresh } from './session';

export type Schemas = components['schemas'];

async function authFetch(request: Request): Promise<Response> {
  const retry = request.clone();
  const token = accessToken();
  if (token) request.headers.set('Authorization', `Bearer ${token}`);
  const response = await fetch(request);
  if (response.status !== 401) return response;
  const session = await refresh();
  if (!session) return response;
  retry.headers.set('Authorization', `Bearer ${session.accessToken}`);
  return fetch(retry);
}

/**
 * `fetch` of an API path with the session's token (and one refresh-and-retry after a 401): for
 * what the typed client cannot read (the event stream, read as it arrives by `api/events.ts`).
 */
export function authorizedFetch(path: string, init?: RequestInit): Promise<Response> {
  return authFetch(new Request(new URL(path, location.origin), init));
}

// The same origin as the page: the studio is served by the API's own server.
export const api = createClient<paths>({ baseUrl: location.origin, fetch: authFetch });

/** The data of an openapi-fetch answer, or its error envelope thrown as an [`ApiError`]. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data !== undefined && result.response.ok) return result.data;
  throw new ApiError(result.response.status, parseEnvelope(result.response.status, result.error));
}
