/**
 * The entries of an object in its JSON Schema's order (`properties`, as the package declares
 * the fields and the forms show them), then any the schema does not name, as they come. Stored
 * data keeps no order a person would choose.
 */
export function inSchemaOrder(value: Record<string, unknown>, properties: unknown): [string, unknown][] {
  const declared = typeof properties === 'object' && properties !== null ? Object.keys(properties) : [];
  const known = new Set(declared);
  return [
    ...declared.filter((k) => k in value).map((k): [string, unknown] => [k, value[k]]),
    ...Object.entries(value).filter(([k]) => !known.has(k)),
  ];
}
