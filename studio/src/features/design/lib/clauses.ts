// A guard taken apart for the guard playground: the rule, each clause of its `and`/`or`/`!`
// (recursively), and the variables each comparison reads, as a flat list with depths. Each one
// is evaluated on its own by the server's rules playground, so the admin sees every clause's
// value, not only the result.

export interface Clause {
  depth: number;
  /** The JSON-Logic to evaluate. */
  rule: unknown;
  /** How it is shown: the rule as compact JSON, cut at 120 characters. */
  text: string;
  kind: 'rule' | 'clause' | 'variable';
}

const LOGICAL = new Set(['and', 'or', '!', '!!', 'if']);
const MAX_CLAUSES = 50;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(rule: unknown): string {
  const text = JSON.stringify(rule);
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

/** The variables (`{"var": …}`) directly among a comparison's operands. */
function variables(args: unknown): unknown[] {
  const list = Array.isArray(args) ? (args as unknown[]) : [args];
  return list.filter((a) => isRecord(a) && 'var' in a);
}

export function clauses(rule: unknown): Clause[] {
  const out: Clause[] = [];
  const walk = (r: unknown, depth: number, kind: Clause['kind']) => {
    if (out.length >= MAX_CLAUSES) return;
    out.push({ depth, rule: r, text: show(r), kind });
    if (!isRecord(r)) return;
    const [op, args] = Object.entries(r)[0] ?? [];
    if (op === undefined || op === 'var') return;
    if (LOGICAL.has(op)) {
      for (const a of Array.isArray(args) ? (args as unknown[]) : [args]) walk(a, depth + 1, 'clause');
    } else {
      for (const v of variables(args)) walk(v, depth + 1, 'variable');
    }
  };
  walk(rule, 0, 'rule');
  return out;
}

/** The data a guard sees for an entity (as the engine gives it: its fields, id and state). */
export function entityContext(
  entity: { id: string; state: string; data: Record<string, unknown> },
  actor: { id: string; roles: string[] },
): Record<string, unknown> {
  return { entity: { ...entity.data, id: entity.id, state: entity.state }, actor, input: {} };
}
