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

  it('says a state moved on the diagram once, not as a change of each state', () => {
    const a = chemichemi();
    const order = a.types.find((t) => t.name === 'order');
    const states = order?.workflow?.states ?? {};
    const moved = (dx: number, names: string[]): PackageJson => ({
      ...a,
      types: a.types.map((t) =>
        t.name !== 'order' || !t.workflow
          ? t
          : {
              ...t,
              workflow: {
                ...t.workflow,
                states: Object.fromEntries(
                  Object.entries(states).map(([k, s]) => [
                    k,
                    names.includes(k) ? { ...s, position: { x: (s.position?.x ?? 0) + dx, y: 0 } } : s,
                  ]),
                ),
              },
            },
      ),
    });
    expect(packageDiff(a, moved(40, ['DRAFT', 'APPROVED', 'CANCELLED']))).toEqual([
      { kind: 'changed', what: 'order › diagram layout (3 states moved; the workflow is the same)' },
    ]);
    expect(packageDiff(a, moved(40, ['DRAFT']))).toEqual([
      { kind: 'changed', what: 'order › diagram layout (state DRAFT moved; the workflow is the same)' },
    ]);
    const relabelled = moved(40, ['DRAFT']);
    const draft = relabelled.types.find((t) => t.name === 'order')?.workflow?.states.DRAFT;
    if (draft) draft.label = 'Being written';
    expect(packageDiff(a, relabelled)).toEqual([{ kind: 'changed', what: 'order › state DRAFT' }]);
  });
});
