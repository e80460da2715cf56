// How an entity is named on screen: its display title when the API sends one, else a number,
// name, code or SKU field of its data, else the start of its id.

export function entityName(e: { id: string; display?: string; data: Record<string, unknown> }): string {
  if (e.display) return e.display;
  const key = Object.keys(e.data).find((k) => /(_number|^name|^code|^sku)$/.test(k) && typeof e.data[k] === 'string');
  return key ? String(e.data[key]) : e.id.slice(0, 8);
}
