// Times as the studio shows them: short enough for a table cell (`Dec 3, 2026, 6:37 PM`, in
// the browser's language and time zone), the exact instant in the element's title.

const SHORT = { dateStyle: 'medium', timeStyle: 'short' } as const;

/** An ISO instant, shortly; the text itself when it is not a date. */
export function shortDateTime(iso: string, locale?: string): string {
  const d = new Date(iso);
  // The parts put together (`format` and `formatToParts` may space the time differently).
  return Number.isNaN(d.getTime())
    ? iso
    : new Intl.DateTimeFormat(locale, SHORT)
        .formatToParts(d)
        .map((p) => p.value)
        .join('');
}

/** An ISO instant in full, with seconds (for a title). */
export function fullDateTime(iso: string, locale?: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(locale);
}

/** [`shortDateTime`] in two pieces, the day and the time of day, with what separates them: a
 * narrow cell breaks the line between them (`Dec 4, 2026,` / `4:14 PM`), never inside one.
 * The three pieces put together are [`shortDateTime`]'s text; `null` when it is not a date. */
export function shortDateTimeParts(iso: string, locale?: string): { date: string; sep: string; time: string } | null {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return null;
  const parts = new Intl.DateTimeFormat(locale, SHORT).formatToParts(d);
  const first = parts.findIndex((p) => p.type === 'hour');
  if (first <= 0) return null;
  const sepAt = parts[first - 1]?.type === 'literal' ? first - 1 : first;
  const text = (ps: Intl.DateTimeFormatPart[]) => ps.map((p) => p.value).join('');
  return { date: text(parts.slice(0, sepAt)), sep: text(parts.slice(sepAt, first)), time: text(parts.slice(first)) };
}
