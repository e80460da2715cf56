// The server's validation problems (`POST …/config/validate`), read as places in the designer:
// `{file: "types/order.yaml", path: "/workflow/transitions/putOnHold/guards/0/rule"}` is the
// transition `putOnHold` of the type `order`, and a problem with `line` is at that line of its
// script.

export interface Problem {
  severity: 'error' | 'warning';
  file: string;
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export type Target =
  | { kind: 'tenant' }
  | { kind: 'type'; type: string }
  | { kind: 'field'; type: string; field: string }
  | { kind: 'state'; type: string; state: string }
  | { kind: 'transition'; type: string; transition: string; detail: string[] }
  | { kind: 'other'; file: string };

/** The segments of an RFC 6901 JSON pointer (`/a~1b/c~0d` → `["a/b", "c~d"]`). */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Where a problem is, in the designer's terms. */
export function problemTarget(p: Pick<Problem, 'file' | 'path'>): Target {
  if (p.file === 'tenant.yaml') return { kind: 'tenant' };
  const m = /^types\/(.+)\.ya?ml$/.exec(p.file);
  const type = m?.[1];
  if (type === undefined) return { kind: 'other', file: p.file };
  const [first, second, name, ...rest] = pointerSegments(p.path);
  if (first === 'fields' && second !== undefined) return { kind: 'field', type, field: second };
  if (first === 'workflow' && second === 'states' && name !== undefined) return { kind: 'state', type, state: name };
  if (first === 'workflow' && second === 'transitions' && name !== undefined) {
    return { kind: 'transition', type, transition: name, detail: rest };
  }
  return { kind: 'type', type };
}

/** Problems first by severity (errors first), then as the server listed them. */
export function sortProblems(problems: Problem[]): Problem[] {
  return problems
    .map((p, i) => [p, i] as const)
    .sort(([a, i], [b, j]) => (a.severity === b.severity ? i - j : a.severity === 'error' ? -1 : 1))
    .map(([p]) => p);
}

/** The problems about one state or transition of one type (for badges on the graph). */
export function problemsAt(problems: Problem[], type: string): { states: Set<string>; transitions: Set<string> } {
  const states = new Set<string>();
  const transitions = new Set<string>();
  for (const p of problems) {
    const t = problemTarget(p);
    if (t.kind === 'state' && t.type === type) states.add(t.state);
    if (t.kind === 'transition' && t.type === type) transitions.add(t.transition);
  }
  return { states, transitions };
}

/** Where a problem is, said in words: "order › transition putOnHold › guards 0 › rule", "line 3:7". */
export function describeLocation(p: Problem): string {
  const t = problemTarget(p);
  const at = p.line !== undefined ? ` (line ${String(p.line)}${p.column !== undefined ? `:${String(p.column)}` : ''})` : '';
  switch (t.kind) {
    case 'tenant':
      return `tenant${p.path ? ` › ${pointerSegments(p.path).join(' › ')}` : ''}`;
    case 'type':
      return `${t.type}${p.path ? ` › ${pointerSegments(p.path).join(' › ')}` : ''}`;
    case 'field':
      return `${t.type} › field ${t.field}`;
    case 'state':
      return `${t.type} › state ${t.state}`;
    case 'transition':
      return `${t.type} › transition ${t.transition}${t.detail.length ? ` › ${t.detail.join(' › ')}` : ''}${at}`;
    case 'other':
      return t.file;
  }
}

export interface ScriptMark {
  from: number;
  to: number;
  severity: 'error' | 'warning';
  message: string;
}

/**
 * The problems of a transition's script as ranges of its text: from the problem's line and
 * column (1-based) to the end of that word, or the whole first line when it has no position.
 */
export function scriptMarks(problems: Problem[], type: string, transition: string, source: string): ScriptMark[] {
  const lines = source.split('\n');
  const starts: number[] = [];
  let at = 0;
  for (const l of lines) {
    starts.push(at);
    at += l.length + 1;
  }
  return problems.flatMap((p) => {
    const t = problemTarget(p);
    if (t.kind !== 'transition' || t.type !== type || t.transition !== transition || t.detail[0] !== 'script') return [];
    const lineIndex = Math.min(Math.max((p.line ?? 1) - 1, 0), lines.length - 1);
    const text = lines[lineIndex] ?? '';
    const start = starts[lineIndex] ?? 0;
    if (p.line === undefined) return [{ from: start, to: start + text.length, severity: p.severity, message: p.message }];
    const col = Math.min(Math.max((p.column ?? 1) - 1, 0), text.length);
    const word = /^[\w.]+/.exec(text.slice(col))?.[0].length ?? 0;
    const to = start + col + Math.max(word, col < text.length ? 1 : 0);
    return [{ from: start + col, to, severity: p.severity, message: p.message }];
  });
}
