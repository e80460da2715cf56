import { describe, expect, it } from 'vitest';
import { cellText, decisionTables, inputsOf, inputValue, readEvaluation, suggestions } from './decisions';
import { examplePackages } from './testPackages';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const qc = parse(readFileSync(join(import.meta.dirname, '../../../../../examples/fulfilment/decisions/qc_outcome.yaml'), 'utf8')) as unknown;

describe('decision tables', () => {
  it('reads a table of the package', () => {
    const [table] = decisionTables({ decisions: [qc, 'junk', { label: 'no name' }] });
    expect(table?.name).toBe('qc_outcome');
    expect(table?.hit).toBe('first');
    expect(table?.inputs.map((i) => [i.name, i.type])).toEqual([
      ['packaging', 'string'],
      ['condition', 'string'],
      ['works', 'boolean'],
      ['accessories_complete', 'boolean'],
    ]);
    expect(table?.inputs.map((i) => i.label)).toEqual(['Packaging', 'Condition', 'Works', 'Accessories complete']);
    expect(table?.outputs).toEqual(['outcome', 'rule']);
    expect(table?.rules[1]?.when).toEqual({ condition: 'used', works: false });
    expect(decisionTables({})).toEqual([]);
    // The examples as the studio reads them carry no decisions list of their own (types only).
    expect(examplePackages().length).toBeGreaterThan(0);
  });

  it('offers the values the rules name for a text input, not comparisons, ranges or quoted text', () => {
    const [table] = decisionTables({ decisions: [qc] });
    if (!table) throw new Error('no table');
    expect(suggestions(table, 'condition')).toEqual(['damaged', 'used', 'new', 'like_new']);
    expect(suggestions(table, 'packaging')).toEqual(['intact']);
    const [tiers] = decisionTables({
      decisions: [
        {
          name: 'd',
          inputs: { tier: { type: 'string', label: 'Customer tier' } },
          rules: [
            { when: { tier: '!= gold' } },
            { when: { tier: ['silver', 'bronze'] } },
            { when: { tier: '"a, b"' } },
            { when: { tier: '[a..c]' } },
            { when: { tier: { var: 'x' } } },
            { when: { tier: '-' } },
            { when: { tier: 'silver' } },
          ],
        },
      ],
    });
    if (!tiers) throw new Error('no table');
    expect(tiers.inputs[0]?.label).toBe('Customer tier');
    expect(suggestions(tiers, 'tier')).toEqual(['silver', 'bronze']);
  });

  it('types what is typed in the boxes', () => {
    const [table] = decisionTables({ decisions: [qc] });
    if (!table) throw new Error('no table');
    expect(inputsOf(table, { condition: 'used', works: 'false', packaging: '', accessories_complete: 'true' })).toEqual({
      condition: 'used',
      works: false,
      accessories_complete: true,
    });
    expect(inputValue({ name: 'n', label: 'N', type: 'integer' }, ' 12 ')).toBe(12);
    expect(inputValue({ name: 'n', label: 'N', type: 'number' }, 'x')).toBe('x');
    expect(inputValue({ name: 's', label: 'S', type: 'string' }, '')).toBeUndefined();
  });

  it('reads the evaluation and its trace', () => {
    const view = readEvaluation({
      outputs: { outcome: 'write_off' },
      trace: { table: 'qc_outcome', hit: 'first', matched: [{ row: 1 }], winner: { row: 1 }, default_used: false },
    });
    expect(view).toEqual({ outputs: { outcome: 'write_off' }, matched: [1], winner: 1, defaultUsed: false });
    expect(readEvaluation({ outputs: null, trace: { matched: [], default_used: true } })).toMatchObject({ winner: null, defaultUsed: true });
    expect(cellText(undefined)).toBe('-');
    expect(cellText('new, like_new')).toBe('new, like_new');
    expect(cellText(false)).toBe('false');
  });
});
