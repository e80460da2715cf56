import { describe, expect, it } from 'vitest';
import { liveKeys } from './live';

describe('live updates', () => {
  it('names the lists, the entity and the inbox an event touches, each once', () => {
    const events = [
      { entity_type: 'order', entity_id: 'a' },
      { entity_type: 'order', entity_id: 'a' },
      { entity_type: 'trip', entity_id: 'b' },
    ];
    expect(liveKeys('acme', events)).toEqual([
      ['t', 'acme', 'list', 'order'],
      ['t', 'acme', 'options', 'order'],
      ['t', 'acme', 'entity', 'order', 'a'],
      ['t', 'acme', 'list', 'trip'],
      ['t', 'acme', 'options', 'trip'],
      ['t', 'acme', 'entity', 'trip', 'b'],
      ['t', 'acme', 'inbox'],
    ]);
    expect(liveKeys('acme', [])).toEqual([]);
  });
});
