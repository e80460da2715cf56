// Live updates: while signed in to a tenant, the studio follows the tenant's event stream and,
// for each event (a creation, a transition, an edit; a change that emits no event of its own
// comes as the built-in `entity.changed`), reads again what it shows of that entity:
// the lists of its type, the entity itself (its data, transitions and history), and the inbox.
// Only the queries on screen are fetched again (react-query refetches active queries and marks
// the others stale), so an event costs one request per thing shown.

import { useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { followEvents, type StreamEvent } from '../api/events';
import { liveKeys } from '../lib/live';

/** Events are gathered for this long, then acted on together (a bulk run sends hundreds). */
const BATCH_MS = 150;

export function useLiveUpdates(tenant: string): void {
  const client = useQueryClient();
  useEffect(() => {
    if (!tenant) return;
    const controller = new AbortController();
    let pending: StreamEvent[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const events = pending;
      pending = [];
      for (const queryKey of liveKeys(tenant, events)) void client.invalidateQueries({ queryKey });
    };
    void followEvents(tenant, {
      signal: controller.signal,
      onEvent: (e) => {
        pending.push(e);
        timer ??= setTimeout(flush, BATCH_MS);
      },
    });
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [client, tenant]);
}
