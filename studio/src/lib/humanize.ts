/**
 * A field name as a label, for fields the package gives none: `postal_code` → "Postal code",
 * `city` → "City".
 */
export function humanize(name: string): string {
  const words = name.replace(/_/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
