// Which of the studio's queries an event makes stale (the query keys are the features' own:
// `['t', tenant, 'list', type, …]`, `['t', tenant, 'entity', type, id, …]`, `['t', tenant,
// 'inbox', …]`, `['t', tenant, 'options', type]`).

export interface LiveEvent {
  entity_type: string;
  entity_id: string;
}

/** The query key prefixes to read again after `events`, each once. */
export function liveKeys(tenant: string, events: LiveEvent[]): string[][] {
  if (events.length === 0) return [];
  const keys = new Map<string, string[]>();
  const add = (k: string[]) => keys.set(JSON.stringify(k), k);
  for (const e of events) {
    add(['t', tenant, 'list', e.entity_type]);
    add(['t', tenant, 'options', e.entity_type]);
    add(['t', tenant, 'entity', e.entity_type, e.entity_id]);
  }
  // Any change may add to or take from what waits for this user.
  add(['t', tenant, 'inbox']);
  return [...keys.values()];
}
