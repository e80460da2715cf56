// `GET …/entities/{type}/export.csv` with the list's filters, search and sort: fetched with the
// session's token (a bare link would carry none) and handed to the browser as a file.

import { api, unwrap } from '../../../api/client';

/** The CSV of the list as it is filtered, as a Blob; a refusal (403 without `export`) throws its envelope. */
export async function exportCsv(tenant: string, type: string, query: Record<string, string>): Promise<Blob> {
  return unwrap(
    await api.GET('/api/v1/t/{tenant}/entities/{type}/export.csv', {
      params: { path: { tenant, type }, query },
      headers: { Accept: 'text/csv' },
      parseAs: 'blob',
    }),
  );
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
