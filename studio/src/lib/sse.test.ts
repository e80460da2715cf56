import { describe, expect, it } from 'vitest';
import { reconnectDelayMs, sseParser, type SseEvent } from './sse';

const stream = ': keep-alive\n\nid: 41\ndata: {"id":41}\n\nid: 42\r\ndata: line one\r\ndata: line two\r\n\r\nevent: unauthorized\ndata: {"error":{}}\n\n';

function read(chunks: string[]): { events: SseEvent[]; last: string | null } {
  const events: SseEvent[] = [];
  const p = sseParser((e) => events.push(e));
  for (const c of chunks) p.push(c);
  return { events, last: p.lastId() };
}

describe('the event stream reader', () => {
  it('reads events, ids, multi-line data and named events; skips comments', () => {
    const { events, last } = read([stream]);
    expect(events).toEqual([
      { event: 'message', data: '{"id":41}', id: '41' },
      { event: 'message', data: 'line one\nline two', id: '42' },
      { event: 'unauthorized', data: '{"error":{}}', id: '42' },
    ]);
    expect(last).toBe('42');
  });

  it('reads the same whatever the cuts between chunks', () => {
    const whole = read([stream]).events;
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(read([stream.slice(0, cut), stream.slice(cut)]).events).toEqual(whole);
    }
    expect(read(stream.split('')).events).toEqual(whole);
  });

  it('waits longer after each failed reconnection, up to 15 s', () => {
    expect([0, 1, 2, 3, 4, 10].map(reconnectDelayMs)).toEqual([1000, 2000, 4000, 8000, 15000, 15000]);
  });
});
