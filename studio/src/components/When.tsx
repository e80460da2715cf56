import { fullDateTime, shortDateTime, shortDateTimeParts } from '../lib/when';

/** An instant: short on the page, exact in its title and `dateTime`. In a narrow cell it breaks
 * between the day and the time of day, never inside either. */
export function When({ iso }: { iso: string }) {
  const parts = shortDateTimeParts(iso);
  return (
    <time className="when" dateTime={iso} title={fullDateTime(iso)}>
      {parts ? (
        <>
          <span className="when-part">{parts.date}</span>
          {parts.sep}
          <span className="when-part">{parts.time}</span>
        </>
      ) : (
        shortDateTime(iso)
      )}
    </time>
  );
}
