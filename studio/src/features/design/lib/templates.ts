// The template preview of the type editor: sample data for a type that has no live entity yet
// (one plausible value per field, nested fields too), and where a template error is. Rendering
// itself is the server's (`POST …/config/draft/preview-template`), so the preview is exactly what
// the server will produce.

import { nestedFields, type FieldJson } from './fields';
import type { TypeJson } from './model';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A plausible value for a field (its default when it has one). */
export function sampleValue(name: string, def: FieldJson, depth = 0): unknown {
  if (def.default !== undefined && !(Array.isArray(def.default) && def.default.length === 0)) return def.default;
  switch (def.type) {
    case 'string':
      return def.label ? `Sample ${def.label.toLowerCase()}` : `sample ${name.replace(/_/g, ' ')}`;
    case 'number':
      return 42.5;
    case 'integer':
      return 7;
    case 'decimal':
      return (1234.5).toFixed(typeof def.scale === 'number' ? def.scale : 2);
    case 'boolean':
      return true;
    case 'date':
      return '2026-01-31';
    case 'datetime':
      return '2026-01-31T09:30:00Z';
    case 'enum':
      return def.values?.[0] ?? 'value';
    case 'reference':
      return '00000000-0000-4000-8000-000000000001';
    case 'user':
      return '00000000-0000-4000-8000-000000000002';
    case 'object':
      return depth > 3 ? {} : sampleData(nestedFields(def) ?? {}, depth + 1);
    case 'array': {
      if (depth > 3 || !def.items) return [];
      return [sampleValue(name, def.items, depth + 1)];
    }
    default:
      return null;
  }
}

/** Sample data for a map of fields: every field, generated ones too (a title often reads those). */
export function sampleData(fields: Record<string, FieldJson>, depth = 0): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([name, def]) => [name, sampleValue(name, def, depth)]));
}

/** Sample data for a type, with its number field holding a sample number. */
export function sampleEntity(type: TypeJson): Record<string, unknown> {
  const data = sampleData((type.fields ?? {}) as Record<string, FieldJson>);
  const number = isRecord(type.number) && typeof type.number.field === 'string' ? type.number.field : null;
  if (number) data[number] = `${type.name.slice(0, 3).toUpperCase()}-2026-000123`;
  return data;
}

/** "at line 2, column 4" from an `INVALID_TEMPLATE` error's details, or "". */
export function templateErrorPlace(details: unknown): string {
  if (!isRecord(details) || typeof details.line !== 'number') return '';
  return typeof details.column === 'number'
    ? ` (line ${String(details.line)}, column ${String(details.column)})`
    : ` (line ${String(details.line)})`;
}
