// The designer's edits of a type's workflow, as pure functions from a package to a package.
// Each either gives the new package or says why it cannot be made (a name taken, a state that
// does not exist): an edit never leaves the draft with a dangling reference it made itself.
// Renames carry every reference along: transitions' `from`/`to`, timers, four-eyes lists, and
// guards comparing the entity's state with the old name.

import type { PackageJson, Position, StateJson, StateKind, TransitionJson, TypeJson, WorkflowJson } from './model';

export type EditResult = { ok: true; pkg: PackageJson } | { ok: false; error: string };

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

/** Why `name` cannot name a state or transition, or null when it can. */
export function nameProblem(name: string): string | null {
  if (name === '') return 'A name is required.';
  if (!NAME.test(name)) return 'Use letters, digits and _, starting with a letter (at most 63).';
  return null;
}

function fail(error: string): EditResult {
  return { ok: false, error };
}

/** Applies `edit` to the workflow of `typeName`, copying only what changes. */
function withWorkflow(
  pkg: PackageJson,
  typeName: string,
  edit: (wf: WorkflowJson, type: TypeJson) => WorkflowJson | string,
): EditResult {
  const index = pkg.types.findIndex((t) => t.name === typeName);
  const type = pkg.types[index];
  if (!type) return fail(`There is no type “${typeName}”.`);
  const wf = type.workflow ?? { states: {} };
  const next = edit(wf, type);
  if (typeof next === 'string') return fail(next);
  const types = pkg.types.slice();
  types[index] = { ...type, workflow: next };
  return { ok: true, pkg: { ...pkg, types } };
}

/** `record` with `key` renamed to `to`, in place in the key order. */
function renameKey<T>(record: Record<string, T>, key: string, to: string): Record<string, T> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k === key ? to : k, v]));
}

function mapTransitions(wf: WorkflowJson, f: (name: string, t: TransitionJson) => TransitionJson | null): WorkflowJson {
  if (!wf.transitions) return wf;
  const out: Record<string, TransitionJson> = {};
  for (const [name, t] of Object.entries(wf.transitions)) {
    const next = f(name, t);
    if (next) out[name] = next;
  }
  return { ...wf, transitions: out };
}

function mapStates(wf: WorkflowJson, f: (name: string, s: StateJson) => StateJson): WorkflowJson {
  return { ...wf, states: Object.fromEntries(Object.entries(wf.states).map(([n, s]) => [n, f(n, s)])) };
}

export function addState(
  pkg: PackageJson,
  typeName: string,
  name: string,
  init: { kind?: StateKind; label?: string; position?: Position } = {},
): EditResult {
  const problem = nameProblem(name);
  if (problem) return fail(problem);
  return withWorkflow(pkg, typeName, (wf) => {
    if (name in wf.states) return `There is already a state “${name}”.`;
    const def: StateJson = {};
    if (init.kind && init.kind !== 'active') def.kind = init.kind;
    if (init.label) def.label = init.label;
    if (init.position) def.position = init.position;
    return { ...wf, states: { ...wf.states, [name]: def } };
  });
}

/** A transition name for an edge to `to` that the workflow does not use yet: `toOnHold`, `toOnHold2`… */
export function suggestTransitionName(wf: WorkflowJson, to: string): string {
  const words = to.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  const base = words.length > 0 ? `to${words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('')}` : 'transition';
  const taken = wf.transitions ?? {};
  if (!(base in taken)) return base;
  for (let i = 2; ; i += 1) if (!(`${base}${String(i)}` in taken)) return `${base}${String(i)}`;
}

/**
 * Adds the transition `name` from `from` to `to`. When a transition of that name already leads
 * to `to`, `from` is added to the states it may be fired from.
 */
export function addTransition(
  pkg: PackageJson,
  typeName: string,
  name: string,
  from: string,
  to: string,
  init: Partial<TransitionJson> = {},
): EditResult {
  const problem = nameProblem(name);
  if (problem) return fail(problem);
  return withWorkflow(pkg, typeName, (wf) => {
    if (!(from in wf.states)) return `There is no state “${from}”.`;
    if (!(to in wf.states)) return `There is no state “${to}”.`;
    const existing = wf.transitions?.[name];
    if (existing) {
      if (existing.to !== to) return `“${name}” already leads to ${existing.to}: choose another name.`;
      if (existing.from?.includes(from)) return `“${name}” already goes from ${from} to ${to}.`;
      return { ...wf, transitions: { ...wf.transitions, [name]: { ...existing, from: [...(existing.from ?? []), from] } } };
    }
    const def: TransitionJson = { from: [from], to, roles: [], ...init };
    return { ...wf, transitions: { ...(wf.transitions ?? {}), [name]: def } };
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const COMPARISONS = new Set(['==', '===', '!=', '!==', 'in']);

function isStateVar(v: unknown): boolean {
  if (!isRecord(v) || !('var' in v)) return false;
  const raw: unknown = v.var;
  const path: unknown = Array.isArray(raw) ? (raw as unknown[])[0] : raw;
  return path === 'state' || (typeof path === 'string' && path.endsWith('.state'));
}

/**
 * A JSON-Logic rule with the state name `from` replaced by `to` where it is compared with a
 * state (`{"==": [{"var": "entity.state"}, "FROM"]}`, `{"in": [{"var": "state"}, ["FROM", …]]}`).
 */
export function renameStateInRule(rule: unknown, from: string, to: string): unknown {
  if (Array.isArray(rule)) return rule.map((r) => renameStateInRule(r, from, to));
  if (!isRecord(rule)) return rule;
  const out: Record<string, unknown> = {};
  for (const [op, args] of Object.entries(rule)) {
    if (COMPARISONS.has(op) && Array.isArray(args) && args.some(isStateVar)) {
      out[op] = args.map((a) => {
        if (a === from) return to;
        if (Array.isArray(a)) return (a as unknown[]).map((x) => (x === from ? to : x));
        return renameStateInRule(a, from, to);
      });
    } else {
      out[op] = renameStateInRule(args, from, to);
    }
  }
  return out;
}

export function renameState(pkg: PackageJson, typeName: string, from: string, to: string): EditResult {
  if (from === to) return { ok: true, pkg };
  const problem = nameProblem(to);
  if (problem) return fail(problem);
  return withWorkflow(pkg, typeName, (wf) => {
    if (!(from in wf.states)) return `There is no state “${from}”.`;
    if (to in wf.states) return `There is already a state “${to}”.`;
    const renamed = { ...wf, states: renameKey(wf.states, from, to) };
    return mapTransitions(renamed, (_, t) => ({
      ...t,
      ...(t.from ? { from: t.from.map((s) => (s === from ? to : s)) } : {}),
      to: t.to === from ? to : t.to,
      ...(t.guards ? { guards: t.guards.map((g) => ({ ...g, rule: renameStateInRule(g.rule, from, to) })) } : {}),
    }));
  });
}

export function renameTransition(pkg: PackageJson, typeName: string, from: string, to: string): EditResult {
  if (from === to) return { ok: true, pkg };
  const problem = nameProblem(to);
  if (problem) return fail(problem);
  return withWorkflow(pkg, typeName, (wf) => {
    const transitions = wf.transitions ?? {};
    if (!(from in transitions)) return `There is no transition “${from}”.`;
    if (to in transitions) return `There is already a transition “${to}”.`;
    const renamed = mapTransitions({ ...wf, transitions: renameKey(transitions, from, to) }, (_, t) =>
      t.four_eyes ? { ...t, four_eyes: t.four_eyes.map((n) => (n === from ? to : n)) } : t,
    );
    return mapStates(renamed, (_, s) =>
      s.timers ? { ...s, timers: s.timers.map((tm) => (tm.transition === from ? { ...tm, transition: to } : tm)) } : s,
    );
  });
}

/** What refers to a state: the transitions leading to it or leaving it. Shown before deleting. */
export function stateReferences(wf: WorkflowJson, state: string): string[] {
  const refs: string[] = [];
  for (const [name, t] of Object.entries(wf.transitions ?? {})) {
    if (t.to === state) refs.push(`transition ${name} leads to it`);
    else if (t.from?.includes(state)) refs.push(`transition ${name} leaves from it`);
  }
  return refs;
}

/** What refers to a transition: timers that fire it, four-eyes lists that name it. */
export function transitionReferences(wf: WorkflowJson, transition: string): string[] {
  const refs: string[] = [];
  for (const [name, s] of Object.entries(wf.states)) {
    if (s.timers?.some((t) => t.transition === transition)) refs.push(`a timer of state ${name} fires it`);
  }
  for (const [name, t] of Object.entries(wf.transitions ?? {})) {
    if (t.four_eyes?.includes(transition)) refs.push(`transition ${name}'s four-eyes rule names it`);
  }
  return refs;
}

function withoutTransitionRefs(wf: WorkflowJson, removed: Set<string>): WorkflowJson {
  if (removed.size === 0) return wf;
  const cleared = mapTransitions(wf, (_, t) =>
    t.four_eyes ? { ...t, four_eyes: t.four_eyes.filter((n) => !removed.has(n)) } : t,
  );
  return mapStates(cleared, (_, s) =>
    s.timers ? { ...s, timers: s.timers.filter((tm) => !removed.has(tm.transition)) } : s,
  );
}

/**
 * Deletes a state with the transitions leading to it; transitions leaving it lose it from their
 * `from` (and go when no state is left). Timers and four-eyes entries of the removed go too.
 */
export function deleteState(pkg: PackageJson, typeName: string, state: string): EditResult {
  return withWorkflow(pkg, typeName, (wf) => {
    if (!(state in wf.states)) return `There is no state “${state}”.`;
    const removed = new Set<string>();
    const states = Object.fromEntries(Object.entries(wf.states).filter(([n]) => n !== state));
    const pruned = mapTransitions({ ...wf, states }, (name, t) => {
      // The create transition has no `from`: it goes only with the state it leads to.
      if (!t.from) {
        if (t.to !== state) return t;
        removed.add(name);
        return null;
      }
      const from = t.from.filter((s) => s !== state);
      if (t.to === state || from.length === 0) {
        removed.add(name);
        return null;
      }
      return from.length === t.from.length ? t : { ...t, from };
    });
    return withoutTransitionRefs(pruned, removed);
  });
}

/**
 * Deletes one edge: the transition `name` from `from`. A transition fired from several states
 * keeps the others; one fired from this state only is deleted with its timers and four-eyes entries.
 */
export function deleteTransitionEdge(pkg: PackageJson, typeName: string, name: string, from: string): EditResult {
  return withWorkflow(pkg, typeName, (wf) => {
    const t = wf.transitions?.[name];
    if (!t) return `There is no transition “${name}”.`;
    const rest = (t.from ?? []).filter((s) => s !== from);
    if (rest.length > 0) return { ...wf, transitions: { ...wf.transitions, [name]: { ...t, from: rest } } };
    const pruned = mapTransitions(wf, (n, x) => (n === name ? null : x));
    return withoutTransitionRefs(pruned, new Set([name]));
  });
}

/** `obj` without the keys a patch cleared (set to undefined). */
function withoutUndefined<T extends Record<string, unknown>>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

export function updateState(pkg: PackageJson, typeName: string, state: string, patch: Partial<StateJson>): EditResult {
  return withWorkflow(pkg, typeName, (wf) => {
    const s = wf.states[state];
    if (!s) return `There is no state “${state}”.`;
    const next = withoutUndefined({ ...s, ...patch });
    if (patch.kind === 'active') delete next.kind;
    return { ...wf, states: { ...wf.states, [state]: next } };
  });
}

/** Places states where an admin dragged them (or where the layout put new ones). */
export function setPositions(pkg: PackageJson, typeName: string, positions: Record<string, Position>): EditResult {
  return withWorkflow(pkg, typeName, (wf) =>
    mapStates(wf, (name, s) => {
      const p = positions[name];
      return p ? { ...s, position: { x: Math.round(p.x), y: Math.round(p.y) } } : s;
    }),
  );
}

export function updateTransition(
  pkg: PackageJson,
  typeName: string,
  name: string,
  patch: Partial<TransitionJson>,
): EditResult {
  return withWorkflow(pkg, typeName, (wf) => {
    const t = wf.transitions?.[name];
    if (!t) return `There is no transition “${name}”.`;
    if (patch.to !== undefined && !(patch.to in wf.states)) return `There is no state “${patch.to}”.`;
    const missing = patch.from?.find((s) => !(s in wf.states));
    if (missing) return `There is no state “${missing}”.`;
    const next = withoutUndefined({ ...t, ...patch });
    return { ...wf, transitions: { ...wf.transitions, [name]: next } };
  });
}

/**
 * References inside a workflow that name nothing: a transition's `from`/`to` that is not a
 * state, a timer or four-eyes entry that is not a transition. The edits above never create one
 * (the unit tests check it on every example); the server's validation reports all the rest.
 */
export function danglingReferences(wf: WorkflowJson): string[] {
  const out: string[] = [];
  const transitions = wf.transitions ?? {};
  for (const [name, t] of Object.entries(transitions)) {
    for (const s of t.from ?? []) if (!(s in wf.states)) out.push(`transition ${name} leaves from missing state ${s}`);
    if (!(t.to in wf.states)) out.push(`transition ${name} leads to missing state ${t.to}`);
    for (const n of t.four_eyes ?? []) {
      if (n !== 'creator' && !(n in transitions)) out.push(`transition ${name}'s four-eyes names missing ${n}`);
    }
  }
  for (const [name, s] of Object.entries(wf.states)) {
    for (const tm of s.timers ?? []) {
      if (!(tm.transition in transitions)) out.push(`a timer of ${name} fires missing transition ${tm.transition}`);
    }
  }
  return out;
}

/** States copied with the transitions among them (those to or from other states stay behind). */
export interface Clipboard {
  states: Record<string, StateJson>;
  transitions: Record<string, TransitionJson>;
}

export function copyStates(wf: WorkflowJson, names: string[]): Clipboard {
  const picked = new Set(names.filter((n) => n in wf.states));
  const states = Object.fromEntries(Object.entries(wf.states).filter(([n]) => picked.has(n)));
  const transitions = Object.fromEntries(
    Object.entries(wf.transitions ?? {}).flatMap(([n, t]) => {
      const from = (t.from ?? []).filter((s) => picked.has(s));
      return picked.has(t.to) && from.length > 0 ? [[n, { ...t, from }]] : [];
    }),
  );
  return { states, transitions };
}

function freeName(taken: Record<string, unknown>, base: string, suffix: string): string {
  if (!(base in taken)) return base;
  for (let i = 1; ; i += 1) {
    const name = `${base}${suffix}${i === 1 ? '' : String(i)}`;
    if (!(name in taken)) return name;
  }
}

/**
 * Pastes copied states (renamed `X_COPY`… when taken, never initial: a workflow has one) and
 * their transitions (renamed `xCopy`…), placed beside the originals.
 */
export function pasteStates(pkg: PackageJson, typeName: string, clip: Clipboard): { result: EditResult; names: string[] } {
  const names: string[] = [];
  const result = withWorkflow(pkg, typeName, (wf) => {
    const states = { ...wf.states };
    const renamed = new Map<string, string>();
    for (const [name, def] of Object.entries(clip.states)) {
      const to = freeName(states, name, '_COPY');
      renamed.set(name, to);
      const copy: StateJson = { ...def };
      if (copy.kind === 'initial') delete copy.kind;
      delete copy.timers;
      if (copy.position) copy.position = { x: copy.position.x + 40, y: copy.position.y + 40 };
      states[to] = copy;
      names.push(to);
    }
    const transitions = { ...(wf.transitions ?? {}) };
    for (const [name, t] of Object.entries(clip.transitions)) {
      const to = freeName(transitions, name, 'Copy');
      const copy: TransitionJson = {
        ...t,
        ...(t.from ? { from: t.from.map((s) => renamed.get(s) ?? s) } : {}),
        to: renamed.get(t.to) ?? t.to,
      };
      delete copy.four_eyes;
      transitions[to] = copy;
    }
    return { ...wf, states, transitions };
  });
  return { result, names };
}
