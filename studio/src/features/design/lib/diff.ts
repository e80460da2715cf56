// What changed between two packages, in the designer's words: types, fields, states and
// transitions added, removed or changed, and the tenant's settings. Used to compare any two
// published versions, and the draft with the live version.

import type { PackageJson, StateJson, TypeJson } from './model';

export interface Change {
  kind: 'added' | 'removed' | 'changed';
  /** e.g. `order`, `order › field notes`, `order › transition putOnHold`, `tenant › roles`. */
  what: string;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function keyed<T>(a: Record<string, T> | undefined, b: Record<string, T> | undefined, label: string, out: Change[]) {
  const before = a ?? {};
  const after = b ?? {};
  for (const k of Object.keys(after)) {
    if (!(k in before)) out.push({ kind: 'added', what: `${label} ${k}` });
    else if (!same(before[k], after[k])) out.push({ kind: 'changed', what: `${label} ${k}` });
  }
  for (const k of Object.keys(before)) if (!(k in after)) out.push({ kind: 'removed', what: `${label} ${k}` });
}

/** A state without its diagram position (a layout hint the engine ignores). */
function withoutPosition(s: StateJson | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(s ?? {}).filter(([k]) => k !== 'position'));
}

/** States whose only change is where the diagram draws them: one line for all of them. */
function states(a: Record<string, StateJson> | undefined, b: Record<string, StateJson> | undefined, out: Change[]) {
  const before = a ?? {};
  const after = b ?? {};
  const strip = (m: Record<string, StateJson>) =>
    Object.fromEntries(Object.entries(m).map(([k, s]) => [k, withoutPosition(s)]));
  keyed(strip(before), strip(after), 'state', out);
  const moved = Object.keys(after).filter(
    (k) => k in before && same(withoutPosition(before[k]), withoutPosition(after[k])) && !same(before[k], after[k]),
  );
  if (moved.length > 0) {
    const n = moved.length === 1 ? `state ${moved.join('')}` : `${String(moved.length)} states`;
    out.push({ kind: 'changed', what: `diagram layout (${n} moved; the workflow is the same)` });
  }
}

function typeChanges(a: TypeJson, b: TypeJson): Change[] {
  const inner: Change[] = [];
  keyed(a.fields, b.fields, 'field', inner);
  states(a.workflow?.states, b.workflow?.states, inner);
  keyed(a.workflow?.transitions, b.workflow?.transitions, 'transition', inner);
  const rest = (t: TypeJson): Record<string, unknown> =>
    Object.fromEntries(Object.entries(t).filter(([k]) => k !== 'fields' && k !== 'workflow'));
  const ra = rest(a);
  const rb = rest(b);
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    if (!same(ra[k], rb[k])) inner.push({ kind: k in ra ? (k in rb ? 'changed' : 'removed') : 'added', what: k });
  }
  return inner.map((c) => ({ ...c, what: `${b.name} › ${c.what}` }));
}

export function packageDiff(a: PackageJson, b: PackageJson): Change[] {
  const out: Change[] = [];
  for (const k of new Set([...Object.keys(a.tenant), ...Object.keys(b.tenant)])) {
    if (!same(a.tenant[k], b.tenant[k])) {
      out.push({ kind: k in a.tenant ? (k in b.tenant ? 'changed' : 'removed') : 'added', what: `tenant › ${k}` });
    }
  }
  const before = new Map(a.types.map((t) => [t.name, t]));
  const after = new Map(b.types.map((t) => [t.name, t]));
  for (const t of b.types) {
    const old = before.get(t.name);
    if (!old) out.push({ kind: 'added', what: `type ${t.name}` });
    else out.push(...typeChanges(old, t));
  }
  for (const t of a.types) if (!after.has(t.name)) out.push({ kind: 'removed', what: `type ${t.name}` });
  return out;
}
