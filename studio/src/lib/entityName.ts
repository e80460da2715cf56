// How an entity is named on screen: its `display` (the server renders the type's title template
// on every entity it answers), else, for a type without a title template (or whose title is
// blank), a number, name, code or SKU field of its data, else the start of its id.

export function entityName(e: { id: string; display?: string; data: Record<string, unknown> }): string {
  if (e.display) return e.display;
  const key = Object.keys(e.data).find((k) => /(_number|^name|^code|^sku)$/.test(k) && typeof e.data[k] === 'string');
  return key ? String(e.data[key]) : e.id.slice(0, 8);
}
