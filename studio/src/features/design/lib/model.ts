// The package as the studio edits it: the canonical JSON the server stores and exports,
// `{tenant: {…}, types: [{name, fields, workflow: {states, transitions}, …}]}`. Only the parts
// the designer edits are typed; every other key is kept as it came (`[key: string]: unknown`),
// so a package read and written back without an edit is the same JSON.

export interface Position {
  x: number;
  y: number;
}

export type StateKind = 'initial' | 'active' | 'terminal';

export interface TimerJson {
  after: string;
  transition: string;
  input?: unknown;
  [key: string]: unknown;
}

export interface StateJson {
  kind?: StateKind;
  label?: string;
  editable?: { fields: string[]; roles: string[] };
  timers?: TimerJson[];
  /** A layout hint of the designer: the engine ignores it, export keeps it. */
  position?: Position;
  [key: string]: unknown;
}

export interface GuardJson {
  rule: unknown;
  message: string;
}

export interface TransitionJson {
  /** Absent for the create transition (`create: true`), which runs when an entity is created. */
  from?: string[];
  create?: boolean;
  to: string;
  label?: string;
  roles?: string[];
  input?: unknown;
  load?: Record<string, unknown>;
  four_eyes?: string[];
  guards?: GuardJson[];
  script?: string;
  events?: string[];
  [key: string]: unknown;
}

export interface WorkflowJson {
  states: Record<string, StateJson>;
  transitions?: Record<string, TransitionJson>;
  [key: string]: unknown;
}

export interface TypeJson {
  name: string;
  label?: string;
  description?: string;
  fields?: Record<string, unknown>;
  workflow?: WorkflowJson;
  [key: string]: unknown;
}

export interface RoleJson {
  label?: string;
  permissions?: Record<string, string[]>;
  [key: string]: unknown;
}

export interface PackageJson {
  tenant: { slug?: string; name?: string; roles?: Record<string, RoleJson>; [key: string]: unknown };
  types: TypeJson[];
  [key: string]: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `value` as a package when it has the package's shape (a tenant object and a list of named types). */
export function asPackage(value: unknown): PackageJson | null {
  if (!isRecord(value) || !isRecord(value.tenant) || !Array.isArray(value.types)) return null;
  if (!value.types.every((t) => isRecord(t) && typeof t.name === 'string')) return null;
  return value as PackageJson;
}

/** The type named `name`, if the package has it. */
export function findType(pkg: PackageJson, name: string): TypeJson | undefined {
  return pkg.types.find((t) => t.name === name);
}

/** The tenant's role names, in the order declared. */
export function roleNames(pkg: PackageJson): string[] {
  return isRecord(pkg.tenant.roles) ? Object.keys(pkg.tenant.roles) : [];
}

/** The kind of a state as the engine reads it (absent = active). */
export function stateKind(state: StateJson): StateKind {
  return state.kind ?? 'active';
}
