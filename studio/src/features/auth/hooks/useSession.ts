import { useSyncExternalStore } from 'react';
import { getSessionState, subscribe, type SessionState } from '../../../api/session';

/** The session, re-rendering when it changes (sign in, refresh, sign out). */
export function useSession(): SessionState {
  return useSyncExternalStore(subscribe, getSessionState);
}
