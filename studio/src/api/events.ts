// The tenant's event stream (`GET /api/v1/t/{tenant}/events/stream`, server-sent events) read
// with `fetch`, so that it carries the session's bearer token (EventSource cannot send one). It
// starts at the end (events from now on) and reconnects after a break with `Last-Event-ID`, so
// nothing is missed in between; when the server ends it with `event: unauthorized` (the access
// token expired), the session is refreshed first.

import { reconnectDelayMs, sseParser } from '../lib/sse';
import { authorizedFetch } from './client';
import { refresh } from './session';

/** An event of the stream (`docs/api.md`, "Events"). */
export interface StreamEvent {
  id: number;
  name: string;
  entity_type: string;
  entity_id: string;
}

export interface StreamOptions {
  onEvent: (e: StreamEvent) => void;
  /** Connected (true) or waiting to reconnect (false). */
  onStatus?: (connected: boolean) => void;
  signal: AbortSignal;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Follows the stream until `signal` aborts. */
export async function followEvents(tenant: string, options: StreamOptions): Promise<void> {
  const { signal } = options;
  let lastId: string | null = null;
  let failures = 0;
  while (!signal.aborted) {
    // What the server said as it ended the stream (`unauthorized`).
    const ended = new Set<string>();
    const started = Date.now();
    try {
      const headers: Record<string, string> = { Accept: 'text/event-stream' };
      if (lastId !== null) headers['Last-Event-ID'] = lastId;
      const response = await authorizedFetch(`/api/v1/t/${encodeURIComponent(tenant)}/events/stream`, { headers, signal });
      if (!response.ok || !response.body) throw new Error(`HTTP ${String(response.status)}`);
      options.onStatus?.(true);
      failures = 0;
      const parser = sseParser((e) => {
        if (e.event === 'unauthorized') {
          ended.add('unauthorized');
          return;
        }
        try {
          options.onEvent(JSON.parse(e.data) as StreamEvent);
        } catch {
          // Not an event of ours: skipped.
        }
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
        lastId = parser.lastId() ?? lastId;
      }
    } catch {
      // A failure, or the abort that ends the loop.
      failures++;
    }
    options.onStatus?.(false);
    if (ended.has('unauthorized')) {
      if (!(await refresh())) return;
    } else if (Date.now() - started < 2000) {
      // Ended as soon as it started: wait before asking again.
      failures++;
    }
    // The server ends a stream after 30 minutes: reconnect at once; after a failure, back off.
    if (failures > 0) await sleep(reconnectDelayMs(failures - 1), signal);
  }
}
