// The state map of a migration, from a dry run's report: one row per type and state that cannot
// move as it is (the state is gone in the target version), with the states it may map to.

import type { PackageJson } from './model';

export interface MapRow {
  /** The state map's key: `type.STATE`. */
  key: string;
  type: string;
  state: string;
  count: number;
  /** The target version's states of that type. */
  targets: string[];
}

export function mapRows(
  entities: { type: string; outcome: string; from_state: string }[],
  target: PackageJson | null,
): MapRow[] {
  const rows = new Map<string, MapRow>();
  for (const e of entities) {
    if (e.outcome !== 'cannot_move') continue;
    const key = `${e.type}.${e.from_state}`;
    const row = rows.get(key);
    if (row) row.count += 1;
    else {
      const states = Object.keys(target?.types.find((t) => t.name === e.type)?.workflow?.states ?? {});
      rows.set(key, { key, type: e.type, state: e.from_state, count: 1, targets: states });
    }
  }
  return [...rows.values()];
}

/** The state map to send: only the rows given a state. */
export function stateMap(choices: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(choices).filter(([, v]) => v !== ''));
}

/**
 * How a version names a type and its states in the migration's tables: their labels, or their
 * names where the version gives no label (or no longer has the state).
 */
export function namesOf(pkg: PackageJson | null): {
  type: (type: string) => string;
  state: (type: string, state: string) => string;
} {
  const find = (type: string) => pkg?.types.find((t) => t.name === type);
  return {
    type: (type) => find(type)?.label ?? type,
    state: (type, state) => find(type)?.workflow?.states[state]?.label ?? state,
  };
}
