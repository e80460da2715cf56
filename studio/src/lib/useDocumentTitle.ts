import { useEffect } from 'react';

/** The page's title, e.g. "Entity types · chemichemi · Switchyard studio" (what tabs and screen readers announce). */
export function documentTitle(...parts: (string | undefined)[]): string {
  return [...parts.filter((p): p is string => p !== undefined && p !== ''), 'Switchyard studio'].join(' · ');
}

export function useDocumentTitle(...parts: (string | undefined)[]): void {
  const title = documentTitle(...parts);
  useEffect(() => {
    document.title = title;
  }, [title]);
}
