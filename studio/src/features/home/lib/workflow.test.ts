import { describe, expect, it } from 'vitest';
import { workflowStates } from './workflow';

describe('workflowStates', () => {
  it('reads states in order, labels falling back to names', () => {
    const wf = {
      initial: 'DRAFT',
      states: [
        { name: 'DRAFT', kind: 'initial', label: 'Draft' },
        { name: 'DONE', kind: 'terminal', label: null },
      ],
    };
    expect(workflowStates(wf)).toEqual([
      { name: 'DRAFT', label: 'Draft', kind: 'initial' },
      { name: 'DONE', label: 'DONE', kind: 'terminal' },
    ]);
  });

  it('has none for a type without a workflow or another shape', () => {
    expect(workflowStates(null)).toEqual([]);
    expect(workflowStates({ states: { DRAFT: {} } })).toEqual([]);
    expect(workflowStates({ states: [42, { label: 'x' }] })).toEqual([]);
  });
});
