// A guard's JSON-Logic as the visual editor's query (react-querybuilder's rules and groups) and
// back. Parsing and formatting are the library's (`parseJsonLogic`, `formatQuery(…, 'jsonlogic')`)
// with the forms our guards use besides its own: `!!`/`!` of a value ("is set", "is not set"),
// a named rule of the tenant (`{"rule": name}`, and its negation). A rule is edited visually only
// when the round trip gives it back exactly (key order included): what the builder cannot express
// (iteration, arithmetic, `if`, …) stays JSON-Logic, never silently changed.
//
// Pure (no React): the component (`components/GuardQueryEditor.tsx`) and the unit tests use it.

import { defaultRuleProcessorJsonLogic, formatQuery } from 'react-querybuilder/formatQuery';
import { parseJsonLogic } from 'react-querybuilder/parseJsonLogic';
import type { Field, RuleGroupType, RuleProcessor, RuleType } from 'react-querybuilder';
import type { PackageJson, TransitionJson, TypeJson } from './model';

/** The operators our guards add to the builder's own. */
export const EXTRA_OPERATORS = [
  { name: 'truthy', value: 'truthy', label: 'is set (not empty, not false)' },
  { name: 'falsy', value: 'falsy', label: 'is not set (empty or false)' },
] as const;

/** Named rules of the tenant appear as fields `rule:<name>` with these operators. */
export const RULE_OPERATORS = [
  { name: 'holds', value: 'holds', label: 'holds' },
  { name: 'fails', value: 'fails', label: 'does not hold' },
] as const;

const RULE_PREFIX = 'rule:';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{"var": "a.b"}` → "a.b" (a plain string path only). */
function varPath(v: unknown): string | null {
  if (!isRecord(v) || Object.keys(v).length !== 1) return null;
  return typeof v.var === 'string' && v.var !== '' ? v.var : null;
}

/** `{"rule": "name"}` → "name". */
function ruleName(v: unknown): string | null {
  if (!isRecord(v) || Object.keys(v).length !== 1) return null;
  return typeof v.rule === 'string' && v.rule !== '' ? v.rule : null;
}

const truthy = (field: string): RuleType => ({ field, operator: 'truthy', value: '' });

function parse(rule: unknown): RuleGroupType | null {
  if (!isRecord(rule)) return null;
  const operations: Record<string, (value: unknown) => RuleType | RuleGroupType | false> = {
    '!!': (args) => {
      const path = varPath(Array.isArray(args) && args.length === 1 ? args[0] : null);
      return path ? truthy(path) : false;
    },
    '!': (args) => {
      const operand: unknown = Array.isArray(args) ? (args.length === 1 ? args[0] : null) : args;
      const path = Array.isArray(args) ? varPath(operand) : null;
      if (path) return { field: path, operator: 'falsy', value: '' };
      const name = Array.isArray(args) ? ruleName(operand) : null;
      if (name) return { field: RULE_PREFIX + name, operator: 'fails', value: '' };
      // A negated group (`{"!": {"and": […]}}`), as the library writes it.
      if (!Array.isArray(args) && isRecord(operand) && ('and' in operand || 'or' in operand)) {
        const inner = parse(operand);
        return inner ? { ...inner, not: true } : false;
      }
      return false;
    },
    rule: (name) => (typeof name === 'string' && name !== '' ? { field: RULE_PREFIX + name, operator: 'holds', value: '' } : false),
  };
  try {
    return parseJsonLogic(rule as Parameters<typeof parseJsonLogic>[0], {
      jsonLogicOperations: operations as NonNullable<Parameters<typeof parseJsonLogic>[1]>['jsonLogicOperations'],
    });
  } catch {
    return null;
  }
}

const processRule: RuleProcessor = (rule, options) => {
  const r = rule;
  if (r.field.startsWith(RULE_PREFIX)) {
    const named = { rule: r.field.slice(RULE_PREFIX.length) };
    return r.operator === 'fails' ? { '!': [named] } : named;
  }
  if (r.operator === 'truthy') return { '!!': [{ var: r.field }] };
  if (r.operator === 'falsy') return { '!': [{ var: r.field }] };
  return defaultRuleProcessorJsonLogic(rule, options) as unknown;
};

/**
 * The query as JSON-Logic, in the form a guard keeps: a group of one rule is that rule, an empty
 * query is `true` (no condition).
 */
export function fromQuery(query: RuleGroupType): unknown {
  const out: unknown = formatQuery(query, { format: 'jsonlogic', ruleProcessor: processRule, parseNumbers: 'strict-limited' });
  if (out === false) return true;
  if (isRecord(out) && Object.keys(out).length === 1) {
    const [op, args] = Object.entries(out)[0] ?? [];
    if ((op === 'and' || op === 'or') && Array.isArray(args) && args.length === 1) return args[0] as unknown;
  }
  return out;
}

/** The rule as a query when the builder can show it exactly; null when it stays JSON-Logic. */
export function toQuery(rule: unknown): RuleGroupType | null {
  const query = parse(rule);
  // Iteration over an array (`some`, `all`, `none`: the library's match modes) reads the
  // element's own fields, which the builder's field list does not describe: JSON-Logic.
  if (!query || hasMatch(query)) return null;
  return JSON.stringify(fromQuery(query)) === JSON.stringify(rule) ? query : null;
}

function hasMatch(group: RuleGroupType): boolean {
  return group.rules.some((r) => typeof r !== 'string' && ('rules' in r ? hasMatch(r) : r.match !== undefined));
}

/** Whether the visual editor can show `rule` (see [`toQuery`]). */
export function expressible(rule: unknown): boolean {
  return toQuery(rule) !== null;
}

function fieldInput(def: unknown): Partial<Field> {
  if (!isRecord(def)) return {};
  switch (def.type) {
    case 'number':
    case 'integer':
    case 'decimal':
      return { inputType: 'number' };
    case 'boolean':
      return { valueEditorType: 'checkbox', defaultValue: true };
    case 'date':
      return { inputType: 'date' };
    case 'enum':
      return Array.isArray(def.values)
        ? { valueEditorType: 'select', values: (def.values as unknown[]).map((v) => ({ name: String(v), label: String(v) })) }
        : {};
    default:
      return {};
  }
}

function fieldsOf(prefix: string, fields: unknown, group: string): Field[] {
  if (!isRecord(fields)) return [];
  return Object.entries(fields).map(([name, def]) => ({
    name: `${prefix}.${name}`,
    value: `${prefix}.${name}`,
    label: `${prefix}.${name}`,
    group,
    ...fieldInput(def),
  }));
}

/** The properties of a transition's input schema (`{type: object, properties}`). */
function inputProperties(input: unknown): Record<string, unknown> {
  if (!isRecord(input) || !isRecord(input.properties)) return {};
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(input.properties)) {
    const t = isRecord(schema) ? schema.type : undefined;
    out[name] = { type: t === 'number' || t === 'integer' || t === 'boolean' ? t : Array.isArray(isRecord(schema) ? schema.enum : null) ? 'enum' : 'string', values: isRecord(schema) ? schema.enum : undefined };
  }
  return out;
}

/**
 * The values a guard of this transition may read, as the builder's fields: the entity's fields,
 * id and state; the input's properties; the actor's id, email and roles; each declared load
 * (itself, then the loaded type's fields); the tenant's named rules.
 */
export function guardFields(pkg: PackageJson, type: TypeJson, transition: TransitionJson | undefined): Field[] {
  const out: Field[] = [
    ...fieldsOf('entity', type.fields, 'Entity'),
    { name: 'entity.id', value: 'entity.id', label: 'entity.id', group: 'Entity' },
    { name: 'entity.state', value: 'entity.state', label: 'entity.state', group: 'Entity' },
    ...fieldsOf('input', inputProperties(transition?.input), 'Input'),
    { name: 'actor.id', value: 'actor.id', label: 'actor.id', group: 'Actor' },
    { name: 'actor.email', value: 'actor.email', label: 'actor.email', group: 'Actor' },
    { name: 'actor.roles', value: 'actor.roles', label: 'actor.roles', group: 'Actor' },
  ];
  for (const [load, def] of Object.entries(transition?.load ?? {})) {
    out.push({ name: load, value: load, label: load, group: `Load ${load}` });
    const loaded = isRecord(def) && typeof def.type === 'string' ? pkg.types.find((t) => t.name === def.type) : undefined;
    if (loaded) {
      out.push(
        { name: `${load}.id`, value: `${load}.id`, label: `${load}.id`, group: `Load ${load}` },
        { name: `${load}.state`, value: `${load}.state`, label: `${load}.state`, group: `Load ${load}` },
        ...fieldsOf(load, loaded.fields, `Load ${load}`),
      );
    }
  }
  const rules = pkg.tenant.rules;
  if (isRecord(rules)) {
    for (const name of Object.keys(rules)) {
      out.push({ name: RULE_PREFIX + name, value: RULE_PREFIX + name, label: `rule ${name}`, group: 'Named rules' });
    }
  }
  return out;
}

/**
 * The fields the builder offers for `query`: `fields`, plus any path the rule reads that they do
 * not list (a nested path such as `entity.delivery_address.city`), so an existing guard always
 * shows what it reads.
 */
export function withQueryFields(fields: Field[], query: RuleGroupType): Field[] {
  const known = new Set(fields.map((f) => f.name));
  const extra: Field[] = [];
  const walk = (g: RuleGroupType) => {
    for (const r of g.rules) {
      if (typeof r === 'string') continue;
      if ('rules' in r) {
        walk(r);
        continue;
      }
      for (const name of [r.field, r.valueSource === 'field' && typeof r.value === 'string' ? r.value : null]) {
        if (name && !known.has(name)) {
          known.add(name);
          extra.push({ name, value: name, label: name.startsWith(RULE_PREFIX) ? `rule ${name.slice(RULE_PREFIX.length)}` : name, group: 'Other' });
        }
      }
    }
  };
  walk(query);
  return [...fields, ...extra];
}

/** Operators the builder offers for a field: named rules hold or not; values compare. */
export function isNamedRule(field: string): boolean {
  return field.startsWith(RULE_PREFIX);
}
