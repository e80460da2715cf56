// `POST …/entities/{type}/transitions/{name}` (a transition on many entities, by ids or by the
// list's filter): the report is streamed as the entities are done, and read as it arrives.

import { api, unwrap } from '../../../api/client';
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
  const result = await api.POST('/api/v1/t/{tenant}/entities/{type}/transitions/{name}', {
    params: { path: { tenant, type, name } },
    body: { ...target, input, dry_run: dryRun },
    parseAs: 'stream',
    ...(signal ? { signal } : {}),
  });
  const body = unwrap(result);
  if (!body) throw new ApiError(result.response.status, parseEnvelope(result.response.status, null));
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
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
