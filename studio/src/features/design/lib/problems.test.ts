import { describe, expect, it } from 'vitest';
import { describeLocation, pointerSegments, problemTarget, problemsAt, scriptMarks, sortProblems, type Problem } from './problems';

const p = (file: string, path: string, extra: Partial<Problem> = {}): Problem => ({
  severity: 'error',
  file,
  path,
  message: 'm',
  ...extra,
});

describe('problems', () => {
  it('unescapes pointers', () => {
    expect(pointerSegments('')).toEqual([]);
    expect(pointerSegments('/a~1b/c~0d')).toEqual(['a/b', 'c~d']);
  });

  it('finds the state, transition, field or type of a problem', () => {
    expect(problemTarget(p('types/order.yaml', '/workflow/states/ON_HOLD'))).toEqual({
      kind: 'state',
      type: 'order',
      state: 'ON_HOLD',
    });
    expect(problemTarget(p('types/order.yaml', '/workflow/transitions/putOnHold/guards/0/rule'))).toEqual({
      kind: 'transition',
      type: 'order',
      transition: 'putOnHold',
      detail: ['guards', '0', 'rule'],
    });
    expect(problemTarget(p('types/order.yaml', '/fields/total_amount/minimum'))).toEqual({
      kind: 'field',
      type: 'order',
      field: 'total_amount',
    });
    expect(problemTarget(p('types/order.yaml', '/title'))).toEqual({ kind: 'type', type: 'order' });
    expect(problemTarget(p('tenant.yaml', '/roles'))).toEqual({ kind: 'tenant' });
    expect(problemTarget(p('data/010.yaml', ''))).toEqual({ kind: 'other', file: 'data/010.yaml' });
  });

  it('says where, with the script line', () => {
    expect(
      describeLocation(p('types/order.yaml', '/workflow/transitions/submitOrder/script', { line: 3, column: 7 })),
    ).toBe('order › transition submitOrder › script (line 3:7)');
    expect(describeLocation(p('types/order.yaml', '/workflow/states/ON_HOLD'))).toBe('order › state ON_HOLD');
  });

  it('sorts errors first and marks states and transitions', () => {
    const list = [
      p('types/order.yaml', '/workflow/states/A', { severity: 'warning' }),
      p('types/order.yaml', '/workflow/states/B'),
      p('types/trip.yaml', '/workflow/transitions/go'),
      p('types/order.yaml', '/workflow/transitions/go/roles'),
    ];
    expect(sortProblems(list).map((x) => x.path)).toEqual([
      '/workflow/states/B',
      '/workflow/transitions/go',
      '/workflow/transitions/go/roles',
      '/workflow/states/A',
    ]);
    const at = problemsAt(list, 'order');
    expect([...at.states]).toEqual(['A', 'B']);
    expect([...at.transitions]).toEqual(['go']);
  });
});

describe('script marks', () => {
  const src = 'let a = 1;\nfoo(a);\n';
  it('marks the word at the line and column', () => {
    const probs = [p('types/order.yaml', '/workflow/transitions/go/script', { line: 2, column: 1, message: 'unknown foo' })];
    expect(scriptMarks(probs, 'order', 'go', src)).toEqual([{ from: 11, to: 14, severity: 'error', message: 'unknown foo' }]);
  });
  it('marks the first line without a position, and ignores other places', () => {
    const probs = [
      p('types/order.yaml', '/workflow/transitions/go/script'),
      p('types/order.yaml', '/workflow/transitions/other/script', { line: 1 }),
      p('types/order.yaml', '/workflow/transitions/go/guards/0', { line: 1 }),
    ];
    expect(scriptMarks(probs, 'order', 'go', src)).toEqual([{ from: 0, to: 10, severity: 'error', message: 'm' }]);
  });
  it('keeps out-of-range positions inside the text', () => {
    const probs = [p('types/order.yaml', '/workflow/transitions/go/script', { line: 99, column: 99 })];
    const [mark] = scriptMarks(probs, 'order', 'go', src);
    expect(mark?.from).toBeLessThanOrEqual(src.length);
  });
});
