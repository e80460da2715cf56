// `POST …/entities/{type}/transitions/{name}` (a transition on many entities, by ids or by the
// list's filter): the report is streamed as the entities are done, and read as it arrives.

import { authorizedFetch } from '../../../api/client';
import { ApiError, parseEnvelope } from '../../../lib/envelope';
import { readReport, type BulkProgress } from '../lib/bulk';

export type BulkTarget = { ids: string[] } | { filter: Record<string, string | string[]> };

/**
 * Fires `name` on the target's entities (`dryRun`: evaluated and rolled back), calling `onProgress`
 * with the report so far after each piece that arrives; resolves with the whole report. A refusal
 * before any entity (a bad filter, an unknown transition) throws its envelope.
 */
export async function bulkTransition(
  tenant: string,
  type: string,
  name: string,
  target: BulkTarget,
  input: Record<string, unknown>,
  dryRun: boolean,
  onProgress: (p: BulkProgress) => void,
  signal?: AbortSignal,
): Promise<BulkProgress> {
  const path = `/api/v1/t/${encodeURIComponent(tenant)}/entities/${encodeURIComponent(type)}/transitions/${encodeURIComponent(name)}`;
  const response = await authorizedFetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...target, input, dry_run: dryRun }),
    ...(signal ? { signal } : {}),
  });
  if (!response.ok || !response.body) {
    const body: unknown = await response.json().catch(() => null);
    throw new ApiError(response.status, parseEnvelope(response.status, body));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  let progress: BulkProgress = { results: [], done: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    progress = readReport(text);
    onProgress(progress);
  }
  if (!progress.done) throw new ApiError(0, { code: 'INCOMPLETE', message: 'The report broke off: the run stopped part of the way. Reload the list to see where it stands.' });
  return progress;
}
