// Times as the studio shows them: short enough for a table cell (`Dec 3, 2026, 6:37 PM`, in
// the browser's language and time zone), the exact instant in the element's title.

const SHORT = { dateStyle: 'medium', timeStyle: 'short' } as const;

/** An ISO instant, shortly; the text itself when it is not a date. */
export function shortDateTime(iso: string, locale?: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : new Intl.DateTimeFormat(locale, SHORT).format(d);
}

/** An ISO instant in full, with seconds (for a title). */
export function fullDateTime(iso: string, locale?: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(locale);
}
