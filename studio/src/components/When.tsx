import { fullDateTime, shortDateTime } from '../lib/when';

/** An instant: short on the page, exact in its title and `dateTime`. */
export function When({ iso }: { iso: string }) {
  return (
    <time className="when" dateTime={iso} title={fullDateTime(iso)}>
      {shortDateTime(iso)}
    </time>
  );
}
