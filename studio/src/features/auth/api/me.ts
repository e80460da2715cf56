import { queryOptions, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../../api/client';

/** `GET /api/v1/auth/me`: the signed-in user as the server sees them now. */
export async function getMe() {
  return unwrap(await api.GET('/api/v1/auth/me'));
}

export const meQuery = () => queryOptions({ queryKey: ['auth', 'me'], queryFn: getMe, staleTime: 60_000 });

export function useMe() {
  return useQuery(meQuery());
}
