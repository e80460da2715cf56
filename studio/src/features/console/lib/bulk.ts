// The streamed report of a bulk transition (`docs/api.md`, "Bulk"): the server writes
// `{"results":[` first, then each entity's result as it is done (`{"id", "ok", "error"?}`,
// comma-separated), then `],"succeeded":n,"failed":n}`. `readReport` reads whatever has arrived
// so far: the complete results, and the totals once the end is there.

export interface BulkResult {
  id: string;
  ok: boolean;
  error?: { code: string; message: string };
}

export interface BulkProgress {
  results: BulkResult[];
  /** The final counts, once the whole report has arrived. */
  done: { succeeded: number; failed: number; dry_run?: boolean } | null;
}

/** The results complete in `text` (a prefix of the report), and the totals when it is whole. */
export function readReport(text: string): BulkProgress {
  const start = text.indexOf('[');
  if (start < 0) return { results: [], done: null };
  const results: BulkResult[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let objectStart = -1;
  let end = -1;
  for (let i = start + 1; i < text.length && end < 0; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth === 0) objectStart = i;
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) results.push(JSON.parse(text.slice(objectStart, i + 1)) as BulkResult);
    } else if (c === ']' && depth === 0) end = i;
  }
  if (end < 0) return { results, done: null };
  try {
    const whole = JSON.parse(text) as { succeeded: number; failed: number; dry_run?: boolean };
    return { results, done: { succeeded: whole.succeeded, failed: whole.failed, ...(whole.dry_run ? { dry_run: true } : {}) } };
  } catch {
    return { results, done: null };
  }
}

/** A transition this user may fire in bulk: not the create one, and open to one of their roles. */
export function bulkTransitions<T extends { name: string; create?: boolean; roles?: string[] }>(transitions: T[], roles: string[]): T[] {
  return transitions.filter((t) => !t.create && (t.roles ?? []).some((r) => roles.includes(r)));
}

/** A report's failures grouped by their message, most frequent first (what to show of thousands). */
export function failureGroups(results: BulkResult[]): { message: string; ids: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const r of results) {
    if (r.ok) continue;
    const message = r.error?.message ?? 'failed';
    groups.set(message, [...(groups.get(message) ?? []), r.id]);
  }
  return [...groups].map(([message, ids]) => ({ message, ids })).sort((a, b) => b.ids.length - a.ids.length);
}
