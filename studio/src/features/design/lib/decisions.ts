// The decision tables of the draft (`decisions` in the package: `{name, label, inputs, outputs,
// hit, rules: [{when, then}], default}`) for the studio's table playground: the tables, the value
// of an input typed in a box, and the server's evaluation (`POST …/decisions/{name}/evaluate`:
// outputs and trace) read for display.

import { humanize } from '../../../lib/humanize';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface DecisionInput {
  name: string;
  type: string;
  /** The column's label in the package, else its name made readable. */
  label: string;
  values?: unknown[];
}

export interface DecisionTable {
  name: string;
  label: string;
  hit: string;
  inputs: DecisionInput[];
  outputs: string[];
  rules: { when: Record<string, unknown>; then: Record<string, unknown> }[];
}

/** The draft's decision tables, in the package's order (malformed entries left out). */
export function decisionTables(pkg: { [key: string]: unknown }): DecisionTable[] {
  const list = Array.isArray(pkg.decisions) ? (pkg.decisions as unknown[]) : [];
  return list.filter(isRecord).flatMap((d) => {
    if (typeof d.name !== 'string') return [];
    const inputs = isRecord(d.inputs)
      ? Object.entries(d.inputs).map(([name, def]) => ({
          name,
          type: isRecord(def) && typeof def.type === 'string' ? def.type : 'string',
          label: isRecord(def) && typeof def.label === 'string' ? def.label : humanize(name),
          ...(isRecord(def) && Array.isArray(def.values) ? { values: def.values as unknown[] } : {}),
        }))
      : [];
    const rules = Array.isArray(d.rules)
      ? (d.rules as unknown[]).filter(isRecord).map((r) => ({
          when: isRecord(r.when) ? r.when : {},
          then: isRecord(r.then) ? r.then : {},
        }))
      : [];
    return [
      {
        name: d.name,
        label: typeof d.label === 'string' ? d.label : d.name,
        hit: typeof d.hit === 'string' ? d.hit : 'first',
        inputs,
        outputs: isRecord(d.outputs) ? Object.keys(d.outputs) : [],
        rules,
      },
    ];
  });
}

/** An input typed in a box, as its type reads it; undefined when left empty (the table sees null). */
export function inputValue(input: DecisionInput, raw: string): unknown {
  const text = raw.trim();
  if (text === '') return undefined;
  switch (input.type) {
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
    case 'number':
    case 'integer':
    case 'decimal':
      return Number.isFinite(Number(text)) ? Number(text) : text;
    default:
      return raw;
  }
}

/** The inputs of a playground's boxes, typed; empty boxes left out. */
export function inputsOf(table: DecisionTable, raw: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const input of table.inputs) {
    const v = inputValue(input, raw[input.name] ?? '');
    if (v !== undefined) out[input.name] = v;
  }
  return out;
}

export interface EvaluationView {
  outputs: unknown;
  matched: number[];
  winner: number | null;
  defaultUsed: boolean;
}

/** The server's `{outputs, trace}` read for display. */
export function readEvaluation(answer: unknown): EvaluationView {
  const trace = isRecord(answer) && isRecord(answer.trace) ? answer.trace : {};
  const row = (r: unknown) => (isRecord(r) && typeof r.row === 'number' ? r.row : null);
  return {
    outputs: isRecord(answer) ? answer.outputs : null,
    matched: Array.isArray(trace.matched) ? (trace.matched as unknown[]).map(row).filter((r): r is number => r !== null) : [],
    winner: row(trace.winner),
    defaultUsed: trace.default_used === true,
  };
}

/** A rule's cell as written in the package (`-` when the rule does not test that input). */
export function cellText(v: unknown): string {
  if (v === undefined) return '-';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * The values the rules name for a text input, to offer while typing: `gold`, each of
 * `gold, silver` and of a list; not what only compares or bounds (`!= gold`, `>= 10`, ranges),
 * nor `-`, quoted text or JSON-Logic. In the rules' order, each once.
 */
export function suggestions(table: DecisionTable, input: string): string[] {
  const out = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v !== 'string') return;
    const text = v.trim();
    if (text === '' || text === '-' || text === 'null' || /^(!=|>=|<=|[<>=[("])/.test(text) || text.includes('..')) return;
    for (const part of text.split(',')) if (part.trim()) out.add(part.trim());
  };
  for (const rule of table.rules) {
    const cell = rule.when[input];
    if (Array.isArray(cell)) cell.forEach(add);
    else add(cell);
  }
  return [...out];
}
