// What a person reads for a type's states and transitions: the package's labels, else the names
// made readable (`PENDING_APPROVAL` → "Pending approval", `approveOrder` → "Approve order").

import { humanize } from './humanize';

export interface WorkflowLabels {
  state: (name: string) => string;
  transition: (name: string) => string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The labels of a workflow as `GET /types` gives it (`{states: [{name, label}], transitions: [...]}`). */
export function workflowLabels(workflow: unknown): WorkflowLabels {
  const read = (key: string): Map<string, string> => {
    const out = new Map<string, string>();
    const list = isRecord(workflow) ? workflow[key] : undefined;
    if (!Array.isArray(list)) return out;
    for (const item of list) {
      if (isRecord(item) && typeof item.name === 'string' && typeof item.label === 'string' && item.label !== '') {
        out.set(item.name, item.label);
      }
    }
    return out;
  };
  const states = read('states');
  const transitions = read('transitions');
  return {
    state: (name) => states.get(name) ?? humanize(name),
    transition: (name) => transitions.get(name) ?? humanize(name),
  };
}
