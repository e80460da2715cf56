// Guards built without writing JSON-Logic: a comparison of one of the context's values (an
// entity field, the input, the actor) with a value, joined with `and` when there are several.
// Anything else is written as JSON-Logic in the guard's rule field.

import type { TypeJson } from './model';

export const OPERATORS = [
  ['>', 'is greater than'],
  ['>=', 'is at least'],
  ['<', 'is less than'],
  ['<=', 'is at most'],
  ['==', 'equals'],
  ['!=', 'differs from'],
] as const;

export type Operator = (typeof OPERATORS)[number][0];

/** A value typed in a box, as JSON: a number, true/false/null, or else the text itself. */
export function parseValue(raw: string): unknown {
  const text = raw.trim();
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text === 'null') return null;
  if (text !== '' && Number.isFinite(Number(text))) return Number(text);
  return raw;
}

/** `{">": [{"var": "entity.total_amount"}, 1000]}` */
export function comparison(variable: string, op: Operator, raw: string): Record<string, unknown> {
  return { [op]: [{ var: variable }, parseValue(raw)] };
}

/** The variables a guard of this type may compare: the entity's fields, its state, the actor's id. */
export function guardVariables(type: TypeJson): string[] {
  const fields = Object.keys(type.fields ?? {}).map((f) => `entity.${f}`);
  return [...fields, 'entity.state', 'actor.id'];
}

/** A rule's JSON text parsed, or why it is not JSON. */
export function parseRule(text: string): { ok: true; rule: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, rule: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, error: `Not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** A short message for a new guard, from its comparison: "total_amount must be greater than 1000". */
export function defaultMessage(variable: string, op: Operator, raw: string): string {
  const words = OPERATORS.find(([o]) => o === op)?.[1] ?? op;
  const name = variable.replace(/^entity\./, '');
  return `${name} must be ${words.replace(/^is /, '')} ${raw.trim()}`.replace('must be equals', 'must equal').replace('must be differs from', 'must differ from');
}
