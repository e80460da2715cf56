import { queryOptions } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';

/** `GET /api/v1/t/{tenant}/types`: the entity types this user may view (schema and workflow). */
export const typesQuery = (tenant: string) =>
  queryOptions({
    queryKey: ['t', tenant, 'types'],
    staleTime: 30_000,
    queryFn: async () => unwrap(await api.GET('/api/v1/t/{tenant}/types', { params: { path: { tenant } } })),
  });
