// `GET …/entities/{type}/export.csv` with the list's filters, search and sort: fetched with the
// session's token (a bare link would carry none) and handed to the browser as a file.

import { authorizedFetch } from '../../../api/client';
import { ApiError, parseEnvelope } from '../../../lib/envelope';

/** The CSV of the list as it is filtered, as a Blob; a refusal (403 without `export`) throws its envelope. */
export async function exportCsv(tenant: string, type: string, query: Record<string, string>): Promise<Blob> {
  const params = new URLSearchParams(query);
  const path = `/api/v1/t/${encodeURIComponent(tenant)}/entities/${encodeURIComponent(type)}/export.csv?${params.toString()}`;
  const response = await authorizedFetch(path, { headers: { Accept: 'text/csv' } });
  if (!response.ok) {
    const body: unknown = await response.json().catch(() => null);
    throw new ApiError(response.status, parseEnvelope(response.status, body));
  }
  return response.blob();
}

/** Saves `blob` as `name` (an object URL on a temporary link, released at once). */
export function saveFile(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => {
    URL.revokeObjectURL(url);
  }, 0);
}
