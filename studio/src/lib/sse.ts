// A reader of `text/event-stream` (the HTML standard's "server-sent events" format) fed with the
// text as it arrives: `id:`, `event:`, `data:` (several lines joined by newlines), comments
// (`:` first) ignored, an event dispatched at each blank line. EventSource does this in the
// browser but cannot send an Authorization header, so the studio reads the stream with `fetch`.

export interface SseEvent {
  /** `message` unless the event names another (`event: unauthorized`). */
  event: string;
  data: string;
  /** The last `id:` seen so far (what to send as `Last-Event-ID` on reconnecting). */
  id: string | null;
}

/** A parser: `push` the text as it comes (any cut), `onEvent` is called per complete event. */
export function sseParser(onEvent: (e: SseEvent) => void): { push: (chunk: string) => void; lastId: () => string | null } {
  let buffer = '';
  let lastId: string | null = null;
  let event = '';
  let data: string[] = [];
  const line = (l: string) => {
    if (l === '') {
      if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id: lastId });
      event = '';
      data = [];
      return;
    }
    if (l.startsWith(':')) return;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) lastId = value;
  };
  return {
    push: (chunk: string) => {
      buffer += chunk;
      // Lines end with CRLF, LF or CR; a CR at the very end may be the first half of a CRLF.
      for (;;) {
        const m = /\r\n|\n|\r(?=[^\n])/.exec(buffer);
        if (!m) break;
        line(buffer.slice(0, m.index));
        buffer = buffer.slice(m.index + m[0].length);
      }
    },
    lastId: () => lastId,
  };
}

/** How long to wait before the `attempt`-th reconnection in a row (1 s, 2 s, 4 s, … at most 15 s). */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(15_000, 1000 * 2 ** Math.max(0, attempt));
}
