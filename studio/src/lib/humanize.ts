/**
 * A name as a label, for names the package gives none: a field (`postal_code` → "Postal code"),
 * a state (`PENDING_APPROVAL` → "Pending approval") or a transition (`approveOrder` →
 * "Approve order").
 */
export function humanize(name: string): string {
  const words = name
    .replace(/_/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .trim()
    .split(/\s+/)
    .map((w, i) => (i > 0 || /^[A-Z0-9]+$/.test(w) ? w.toLowerCase() : w))
    .join(' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}
