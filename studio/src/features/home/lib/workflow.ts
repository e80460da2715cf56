// Reading the `workflow` of a type as `GET …/types` describes it (typed as any object in the
// OpenAPI document): `{initial, states: [{name, kind, label}], transitions: […]}`.

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
    const label = typeof s.label === 'string' && s.label !== '' ? s.label : s.name;
    return [{ name: s.name, label, kind: typeof s.kind === 'string' ? s.kind : 'active' }];
  });
}
