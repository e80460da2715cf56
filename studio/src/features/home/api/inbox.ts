import { queryOptions } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';

/** `GET /api/v1/t/{tenant}/inbox`: what this user can do now, oldest first (one page). */
export const inboxQuery = (tenant: string, cursor: string | null) =>
  queryOptions({
    queryKey: ['t', tenant, 'inbox', cursor],
    queryFn: async () =>
      unwrap(
        await api.GET('/api/v1/t/{tenant}/inbox', {
          params: { path: { tenant }, query: { limit: 100, ...(cursor ? { cursor } : {}) } },
        }),
      ),
  });
