// The console's server calls: a type's list, one entity, its transitions (explained for this
// user), firing one, its history; and the tenant's OpenAPI document (sort keys per type).

import { queryOptions } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';

export const tenantDocQuery = (tenant: string) =>
  queryOptions({
    queryKey: ['t', tenant, 'openapi'],
    staleTime: 60_000,
    queryFn: async () =>
      unwrap(await api.GET('/api/v1/t/{tenant}/openapi.json', { params: { path: { tenant } } })) as unknown,
  });

/** What a list asks for: search, sort, page, and its filters as query parameters (`state[in]`: `A,B`). */
export interface ListParams {
  q: string;
  sort: string;
  cursor: string | null;
  filters: Record<string, string>;
  limit?: number;
}

export const listQuery = (tenant: string, type: string, p: ListParams) =>
  queryOptions({
    queryKey: ['t', tenant, 'list', type, p],
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/t/{tenant}/entities/{type}', {
          params: {
            path: { tenant, type },
            // The filters are the type's own (the tenant's document lists them; the generic one cannot).
            query: {
              ...p.filters,
              sort: p.sort,
              limit: p.limit ?? 25,
              total: true,
              ...(p.q ? { q: p.q } : {}),
              ...(p.cursor ? { cursor: p.cursor } : {}),
            },
          },
        }),
      ),
  });

export const entityQuery = (tenant: string, type: string, id: string) =>
  queryOptions({
    queryKey: ['t', tenant, 'entity', type, id],
    queryFn: async () =>
      unwrap(await api.GET('/api/v1/t/{tenant}/entities/{type}/{id}', { params: { path: { tenant, type, id } } })),
  });

export const transitionsQuery = (tenant: string, type: string, id: string) =>
  queryOptions({
    queryKey: ['t', tenant, 'entity', type, id, 'transitions'],
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/t/{tenant}/entities/{type}/{id}/transitions', { params: { path: { tenant, type, id } } }),
      ).data,
  });

export const historyQuery = (tenant: string, type: string, id: string) =>
  queryOptions({
    queryKey: ['t', tenant, 'entity', type, id, 'history'],
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/t/{tenant}/entities/{type}/{id}/history', { params: { path: { tenant, type, id } } }),
      ).data,
  });

export async function fire(tenant: string, type: string, id: string, name: string, input: Record<string, unknown>) {
  return unwrap(
    await api.POST('/api/v1/t/{tenant}/entities/{type}/{id}/transitions/{name}', {
      params: { path: { tenant, type, id, name } },
      body: { input },
    }),
  );
}

/** The entities a reference may point to (a picker's options, by title): the first 200. */
export const referenceOptionsQuery = (tenant: string, type: string) =>
  queryOptions({
    queryKey: ['t', tenant, 'options', type],
    staleTime: 30_000,
    enabled: type !== '',
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/t/{tenant}/entities/{type}', {
          params: { path: { tenant, type }, query: { limit: 200 } },
        }),
      ).data,
  });

/** The users a user field may hold (`x-user: {role}`): the active users having the role, by name. */
export const userChoicesQuery = (tenant: string, role: string | null) =>
  queryOptions({
    queryKey: ['t', tenant, 'user-choices', role],
    staleTime: 30_000,
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/t/{tenant}/user-choices', {
          params: { path: { tenant }, query: role ? { role } : {} },
        }),
      ).data,
  });

/**
 * A picker's search: the entities of `type` whose searchable fields hold every word of `q` (the
 * server's `q`, so beyond the first 200), 20 at most. A type with no searchable field answers 422:
 * the picker then searches its first 200 options itself.
 */
export const referenceSearchQuery = (tenant: string, type: string, q: string) =>
  queryOptions({
    queryKey: ['t', tenant, 'options', type, q],
    staleTime: 30_000,
    enabled: type !== '' && q.trim() !== '',
    retry: false,
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/t/{tenant}/entities/{type}', {
          params: { path: { tenant, type }, query: { q: q.trim(), limit: 20 } },
        }),
      ).data,
  });

export async function createEntity(tenant: string, type: string, data: unknown) {
  return unwrap(
    await api.POST('/api/v1/t/{tenant}/entities/{type}', {
      params: { path: { tenant, type } },
      body: { data: data as Record<string, unknown> },
    }),
  );
}

/** `PATCH` with `If-Match: version`: a 409 `VERSION_CONFLICT` when someone changed it meanwhile. */
export async function patchEntity(tenant: string, type: string, id: string, version: number, data: Record<string, unknown>) {
  return unwrap(
    await api.PATCH('/api/v1/t/{tenant}/entities/{type}/{id}', {
      params: { path: { tenant, type, id }, header: { 'If-Match': String(version) } },
      body: { data },
    }),
  );
}

/** The signed-in user (`GET /auth/me`, the same cache entry as the auth feature's): their roles. */
export const meQuery = () =>
  queryOptions({
    queryKey: ['auth', 'me'],
    staleTime: 60_000,
    queryFn: async () => unwrap(await api.GET('/api/v1/auth/me')),
  });
