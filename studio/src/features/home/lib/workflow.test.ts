import { describe, expect, it } from 'vitest';
import { workflowStates, workflowTransitions } from './workflow';

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
      { name: 'DONE', label: 'Done', kind: 'terminal' },
    ]);
  });

  it('has none for a type without a workflow or another shape', () => {
    expect(workflowStates(null)).toEqual([]);
    expect(workflowStates({ states: { DRAFT: {} } })).toEqual([]);
    expect(workflowStates({ states: [42, { label: 'x' }] })).toEqual([]);
  });
});

describe('workflowTransitions', () => {
  it('reads transitions in order, with readable labels, their states and roles', () => {
    const wf = {
      transitions: [
        { name: 'placeOrder', create: true, from: [], to: 'DRAFT', roles: ['sales'] },
        { name: 'approveOrder', label: 'Approve', from: ['PENDING'], to: 'APPROVED', roles: ['manager', 'admin'] },
        { name: 'broken' },
      ],
    };
    expect(workflowTransitions(wf)).toEqual([
      { name: 'placeOrder', label: 'Place order', from: [], to: 'DRAFT', roles: ['sales'], create: true },
      { name: 'approveOrder', label: 'Approve', from: ['PENDING'], to: 'APPROVED', roles: ['manager', 'admin'], create: false },
    ]);
    expect(workflowTransitions(null)).toEqual([]);
  });
});
