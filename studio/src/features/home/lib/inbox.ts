// The inbox page's shape, from one page of `GET …/inbox`: the entities grouped by type and
// transition (in the order the server's groups give, oldest entity first within each), and the
// counts the navigation shows per type.

import { humanize } from '../../../lib/humanize';

export interface InboxEntity {
  id: string;
  type: string;
  state: string;
  display?: string;
  data: Record<string, unknown>;
  created_at: string;
}

export interface InboxItem {
  entity: InboxEntity;
  transitions: { name: string; label?: string | null; to: string }[];
}

export interface InboxGroup {
  type: string;
  transition: string;
  label?: string | null;
  count: number;
}

export interface InboxSection {
  type: string;
  transition: string;
  /** The transition's label, else its name made readable (`approveOrder` → "Approve order"). */
  title: string;
  entities: InboxEntity[];
}

/** One section per (type, transition) group, each with the page's entities that allow it. */
export function sections(items: InboxItem[], groups: InboxGroup[]): InboxSection[] {
  return groups.map((g) => ({
    type: g.type,
    transition: g.transition,
    title: g.label || humanize(g.transition),
    entities: items
      .filter((i) => i.entity.type === g.type && i.transitions.some((t) => t.name === g.transition))
      .map((i) => i.entity),
  }));
}

/**
 * Entities waiting per type (an entity counts once however many transitions it allows), as the
 * navigation shows them: `"3"`, or `"3+"` when the inbox has more pages than this one.
 */
export function countsByType(items: InboxItem[], more: boolean): Map<string, string> {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i.entity.type, (counts.get(i.entity.type) ?? 0) + 1);
  return new Map([...counts].map(([type, n]) => [type, more ? `${String(n)}+` : String(n)]));
}
