import { queryOptions, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';

/** `GET /api/v1/t/{tenant}/types`: the entity types this user may view. */
export async function getTypes(tenant: string) {
  return unwrap(await api.GET('/api/v1/t/{tenant}/types', { params: { path: { tenant } } }));
}

export const typesQuery = (tenant: string) =>
  queryOptions({ queryKey: ['t', tenant, 'types'], queryFn: () => getTypes(tenant), staleTime: 30_000 });

export function useTypes(tenant: string) {
  return useQuery(typesQuery(tenant));
}
