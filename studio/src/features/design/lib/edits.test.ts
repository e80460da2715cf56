import { describe, expect, it } from 'vitest';
import {
  addState,
  copyStates,
  pasteStates,
  addTransition,
  danglingReferences,
  deleteState,
  deleteTransitionEdge,
  nameProblem,
  renameState,
  renameStateInRule,
  renameTransition,
  setPositions,
  stateReferences,
  suggestTransitionName,
  transitionReferences,
  updateState,
  updateTransition,
  type EditResult,
} from './edits';
import type { PackageJson, WorkflowJson } from './model';
import { chemichemi, examplePackages } from './testPackages';

function ok(r: EditResult): PackageJson {
  if (!r.ok) throw new Error(r.error);
  return r.pkg;
}

function wf(pkg: PackageJson, type: string): WorkflowJson {
  const w = pkg.types.find((t) => t.name === type)?.workflow;
  if (!w) throw new Error(`no workflow for ${type}`);
  return w;
}

const workflows = examplePackages().flatMap(([pkgName, pkg]) =>
  pkg.types.filter((t) => t.workflow).map((t) => [`${pkgName}/${t.name}`, pkg, t.name] as const),
);

describe('the edits of the issue’s scenario', () => {
  it('adds ON_HOLD and putOnHold, then resume', () => {
    let pkg = chemichemi();
    pkg = ok(addState(pkg, 'order', 'ON_HOLD', { label: 'On hold' }));
    pkg = ok(
      addTransition(pkg, 'order', 'putOnHold', 'PENDING_APPROVAL', 'ON_HOLD', {
        roles: ['manager'],
        guards: [{ rule: { '>': [{ var: 'entity.total_amount' }, 1000] }, message: 'Only large orders' }],
      }),
    );
    pkg = ok(addTransition(pkg, 'order', 'resume', 'ON_HOLD', 'PENDING_APPROVAL', { roles: ['manager'] }));
    const w = wf(pkg, 'order');
    expect(Object.keys(w.states)).toHaveLength(11);
    expect(w.states.ON_HOLD).toEqual({ label: 'On hold' });
    expect(w.transitions?.putOnHold).toMatchObject({ from: ['PENDING_APPROVAL'], to: 'ON_HOLD', roles: ['manager'] });
    expect(danglingReferences(w)).toEqual([]);
    // The package it came from is untouched.
    expect(Object.keys(wf(chemichemi(), 'order').states)).toHaveLength(10);
  });
});

describe('refusals say why', () => {
  const pkg = chemichemi();
  it.each([
    [addState(pkg, 'order', 'DRAFT'), 'There is already a state “DRAFT”.'],
    [addState(pkg, 'order', '9lives'), 'Use letters, digits and _, starting with a letter (at most 63).'],
    [addState(pkg, 'nope', 'X'), 'There is no type “nope”.'],
    [addTransition(pkg, 'order', 'go', 'NOWHERE', 'DRAFT'), 'There is no state “NOWHERE”.'],
    [addTransition(pkg, 'order', 'submitOrder', 'APPROVED', 'DELIVERED'), '“submitOrder” already leads to PENDING_APPROVAL: choose another name.'],
    [renameState(pkg, 'order', 'DRAFT', 'APPROVED'), 'There is already a state “APPROVED”.'],
    [renameTransition(pkg, 'order', 'submitOrder', 'approveOrder'), 'There is already a transition “approveOrder”.'],
    [updateTransition(pkg, 'order', 'submitOrder', { to: 'MOON' }), 'There is no state “MOON”.'],
  ])('%#', (result, error) => {
    expect(result).toEqual({ ok: false, error });
  });

  it('names', () => {
    expect(nameProblem('')).toBe('A name is required.');
    expect(nameProblem('ON_HOLD')).toBeNull();
    expect(nameProblem('putOnHold')).toBeNull();
    expect(nameProblem('a'.repeat(64))).not.toBeNull();
  });
});

describe('every edit on every example keeps its references whole', () => {
  it.each(workflows)('%s', (_, pkg, type) => {
    const start = wf(pkg, type);
    const states = Object.keys(start.states);
    const transitions = Object.keys(start.transitions ?? {});
    expect(danglingReferences(start)).toEqual([]);

    for (const s of states) {
      const renamed = wf(ok(renameState(pkg, type, s, `${s}_X`)), type);
      expect(danglingReferences(renamed)).toEqual([]);
      expect(Object.keys(renamed.states)).toEqual(states.map((n) => (n === s ? `${s}_X` : n)));
      expect(stateReferences(renamed, s)).toEqual([]);
      expect(stateReferences(renamed, `${s}_X`)).toEqual(stateReferences(start, s));

      const deleted = wf(ok(deleteState(pkg, type, s)), type);
      expect(danglingReferences(deleted)).toEqual([]);
      expect(s in deleted.states).toBe(false);
    }
    for (const t of transitions) {
      const renamed = wf(ok(renameTransition(pkg, type, t, `${t}X`)), type);
      expect(danglingReferences(renamed)).toEqual([]);
      expect(transitionReferences(renamed, `${t}X`)).toEqual(transitionReferences(start, t));
      for (const from of start.transitions?.[t]?.from ?? []) {
        const cut = wf(ok(deleteTransitionEdge(pkg, type, t, from)), type);
        expect(danglingReferences(cut)).toEqual([]);
        expect(cut.transitions?.[t]?.from ?? []).not.toContain(from);
      }
    }
  });
});

describe('renames carry references along', () => {
  it('renames a state in from/to and in guards comparing the state', () => {
    const pkg: PackageJson = {
      tenant: {},
      types: [
        {
          name: 'ticket',
          workflow: {
            states: { OPEN: { kind: 'initial' }, DONE: { kind: 'terminal' } },
            transitions: {
              close: {
                from: ['OPEN'],
                to: 'DONE',
                roles: ['agent'],
                guards: [{ rule: { in: [{ var: 'parent.state' }, ['OPEN', 'DONE']] }, message: 'm' }],
              },
            },
          },
        },
      ],
    };
    const w = wf(ok(renameState(pkg, 'ticket', 'OPEN', 'NEW')), 'ticket');
    expect(Object.keys(w.states)).toEqual(['NEW', 'DONE']);
    expect(w.transitions?.close?.from).toEqual(['NEW']);
    expect(w.transitions?.close?.guards?.[0]?.rule).toEqual({ in: [{ var: 'parent.state' }, ['NEW', 'DONE']] });
  });

  it('leaves strings that are not compared with a state alone', () => {
    const rule = { and: [{ '==': [{ var: 'entity.note' }, 'OPEN'] }, { '==': ['OPEN', { var: 'state' }] }] };
    expect(renameStateInRule(rule, 'OPEN', 'NEW')).toEqual({
      and: [{ '==': [{ var: 'entity.note' }, 'OPEN'] }, { '==': ['NEW', { var: 'state' }] }],
    });
  });

  it('renames a transition in timers and four-eyes lists', () => {
    const pkg: PackageJson = {
      tenant: {},
      types: [
        {
          name: 'req',
          workflow: {
            states: { A: { kind: 'initial', timers: [{ after: '1h', transition: 'ok' }] }, B: {} },
            transitions: { ok: { from: ['A'], to: 'B' }, check: { from: ['B'], to: 'A', four_eyes: ['ok', 'creator'] } },
          },
        },
      ],
    };
    const w = wf(ok(renameTransition(pkg, 'req', 'ok', 'approve')), 'req');
    expect(Object.keys(w.transitions ?? {})).toEqual(['approve', 'check']);
    expect(w.states.A?.timers?.[0]?.transition).toBe('approve');
    expect(w.transitions?.check?.four_eyes).toEqual(['approve', 'creator']);
    expect(transitionReferences(w, 'approve')).toEqual([
      'a timer of state A fires it',
      "transition check's four-eyes rule names it",
    ]);
    const cut = wf(ok(deleteTransitionEdge(pkg, 'req', 'ok', 'A')), 'req');
    expect(cut.states.A?.timers).toEqual([]);
    expect(cut.transitions?.check?.four_eyes).toEqual(['creator']);
  });
});

describe('small edits', () => {
  it('suggests unused transition names', () => {
    const w: WorkflowJson = { states: {}, transitions: { toOnHold: { from: [], to: 'ON_HOLD' } } };
    expect(suggestTransitionName(w, 'ON_HOLD')).toBe('toOnHold2');
    expect(suggestTransitionName(w, 'IN_TRANSIT')).toBe('toInTransit');
  });

  it('adding an existing name to the same target adds a source state', () => {
    const w = wf(ok(addTransition(chemichemi(), 'order', 'cancelOrder', 'DRAFT', 'CANCELLED')), 'order');
    expect(w.transitions?.cancelOrder?.from).toEqual(['PENDING_APPROVAL', 'APPROVED', 'ALLOCATED', 'DRAFT']);
  });

  it('updates and clears keys, places states on whole pixels', () => {
    let pkg = ok(updateState(chemichemi(), 'order', 'APPROVED', { kind: 'terminal', label: undefined }));
    expect(wf(pkg, 'order').states.APPROVED).toEqual({ kind: 'terminal' });
    pkg = ok(updateState(pkg, 'order', 'APPROVED', { kind: 'active' }));
    expect(wf(pkg, 'order').states.APPROVED).toEqual({});
    pkg = ok(setPositions(pkg, 'order', { APPROVED: { x: 10.4, y: -3.6 } }));
    expect(wf(pkg, 'order').states.APPROVED).toEqual({ position: { x: 10, y: -4 } });
  });
});

describe('copy and paste', () => {
  it('copies states with the transitions among them and pastes them renamed', () => {
    const pkg = chemichemi();
    const clip = copyStates(wf(pkg, 'order'), ['IN_TRANSIT', 'DELIVERED', 'FAILED']);
    expect(Object.keys(clip.states)).toEqual(['IN_TRANSIT', 'DELIVERED', 'FAILED']);
    expect(Object.keys(clip.transitions).sort()).toEqual(['completeDelivery', 'failDelivery']);
    const { result, names } = pasteStates(pkg, 'order', clip);
    const w = wf(ok(result), 'order');
    expect(names).toEqual(['IN_TRANSIT_COPY', 'DELIVERED_COPY', 'FAILED_COPY']);
    expect(w.transitions?.completeDeliveryCopy).toMatchObject({ from: ['IN_TRANSIT_COPY'], to: 'DELIVERED_COPY' });
    expect(danglingReferences(w)).toEqual([]);
    // Twice: new names again.
    const again = pasteStates(ok(result), 'order', clip);
    expect(again.names).toEqual(['IN_TRANSIT_COPY2', 'DELIVERED_COPY2', 'FAILED_COPY2']);
  });

  it('never pastes a second initial state', () => {
    const pkg = chemichemi();
    const { result, names } = pasteStates(pkg, 'order', copyStates(wf(pkg, 'order'), ['DRAFT']));
    expect(names).toEqual(['DRAFT_COPY']);
    expect(wf(ok(result), 'order').states.DRAFT_COPY?.kind).toBeUndefined();
  });
});

describe('the create transition (no `from`)', () => {
  const pkg = (): PackageJson => ({
    tenant: {},
    types: [
      {
        name: 't',
        workflow: {
          states: { NEW: { kind: 'initial' }, OPEN: {}, DONE: { kind: 'terminal' } },
          transitions: {
            open: { create: true, to: 'OPEN', roles: ['r'] },
            finish: { from: ['OPEN'], to: 'DONE', roles: ['r'] },
          },
        },
      },
    ],
  });

  it('keeps no `from` through a rename, and goes only with the state it leads to', () => {
    const renamed = wf(ok(renameState(pkg(), 't', 'OPEN', 'STARTED')), 't');
    expect(renamed.transitions?.open).toEqual({ create: true, to: 'STARTED', roles: ['r'] });
    expect(wf(ok(deleteState(pkg(), 't', 'DONE')), 't').transitions?.open).toEqual({
      create: true,
      to: 'OPEN',
      roles: ['r'],
    });
    expect(wf(ok(deleteState(pkg(), 't', 'OPEN')), 't').transitions?.open).toBeUndefined();
  });
});
