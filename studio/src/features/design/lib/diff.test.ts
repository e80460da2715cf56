import { describe, expect, it } from 'vitest';
import { packageDiff } from './diff';
import { addState, addTransition, type EditResult } from './edits';
import { addType, removeField, updateField } from './fields';
import type { PackageJson } from './model';
import { chemichemi } from './testPackages';

function ok(r: EditResult): PackageJson {
  if (!r.ok) throw new Error(r.error);
  return r.pkg;
}

describe('packageDiff', () => {
  it('is empty for the same package', () => {
    expect(packageDiff(chemichemi(), chemichemi())).toEqual([]);
  });

  it('names what was added, removed and changed', () => {
    const a = chemichemi();
    let b = ok(addState(a, 'order', 'ON_HOLD'));
    b = ok(addTransition(b, 'order', 'putOnHold', 'PENDING_APPROVAL', 'ON_HOLD'));
    b = ok(removeField(b, 'order', 'failure_reason'));
    b = ok(updateField(b, 'order', 'notes', { max_length: 10 }));
    b = ok(addType(b, 'complaint'));
    b = { ...b, tenant: { ...b.tenant, name: 'Renamed' } };
    expect(packageDiff(a, b)).toEqual([
      { kind: 'changed', what: 'tenant › name' },
      { kind: 'changed', what: 'order › field notes' },
      { kind: 'removed', what: 'order › field failure_reason' },
      { kind: 'added', what: 'order › state ON_HOLD' },
      { kind: 'added', what: 'order › transition putOnHold' },
      { kind: 'added', what: 'type complaint' },
    ]);
    expect(packageDiff(b, a)).toContainEqual({ kind: 'removed', what: 'type complaint' });
  });
});
