import { describe, expect, it } from 'vitest';
import { workflowLabels } from './workflowLabels';

describe('workflow labels', () => {
  it('use the package’s labels, else readable names', () => {
    const labels = workflowLabels({
      states: [{ name: 'PENDING_APPROVAL', label: 'Waiting for approval' }, { name: 'DRAFT', label: null }],
      transitions: [{ name: 'approveOrder', label: 'Approve' }, { name: 'cancelOrder' }],
    });
    expect(labels.state('PENDING_APPROVAL')).toBe('Waiting for approval');
    expect(labels.state('DRAFT')).toBe('Draft');
    expect(labels.transition('approveOrder')).toBe('Approve');
    expect(labels.transition('cancelOrder')).toBe('Cancel order');
    expect(workflowLabels(undefined).state('IN_TRANSIT')).toBe('In transit');
  });
});
