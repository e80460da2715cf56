// Reading the `workflow` of a type as `GET …/types` describes it (typed as any object in the
// OpenAPI document): `{initial, states: [{name, kind, label}], transitions: […]}`.

import { humanize } from '../../../lib/humanize';

export interface StateSummary {
  name: string;
  label: string;
  kind: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The workflow's states in definition order; none when it has no workflow or another shape. */
export function workflowStates(workflow: unknown): StateSummary[] {
  if (!isRecord(workflow) || !Array.isArray(workflow.states)) return [];
  return workflow.states.filter(isRecord).flatMap((s) => {
    if (typeof s.name !== 'string') return [];
    const label = typeof s.label === 'string' && s.label !== '' ? s.label : humanize(s.name);
    return [{ name: s.name, label, kind: typeof s.kind === 'string' ? s.kind : 'active' }];
  });
}

export interface TransitionSummary {
  name: string;
  label: string;
  /** The states it leaves (none for a create transition). */
  from: string[];
  to: string;
  roles: string[];
  create: boolean;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The workflow's transitions in definition order, labelled (else their names made readable). */
export function workflowTransitions(workflow: unknown): TransitionSummary[] {
  if (!isRecord(workflow) || !Array.isArray(workflow.transitions)) return [];
  return workflow.transitions.filter(isRecord).flatMap((t) => {
    if (typeof t.name !== 'string' || typeof t.to !== 'string') return [];
    const label = typeof t.label === 'string' && t.label !== '' ? t.label : humanize(t.name);
    return [{ name: t.name, label, from: strings(t.from), to: t.to, roles: strings(t.roles), create: t.create === true }];
  });
}
