import { describe, expect, it } from 'vitest';
import { bulkTransitions, failureGroups, readReport } from './bulk';

const report =
  '{"results":[{"id":"a","ok":true},{"id":"b","ok":false,"error":{"code":"GUARD_FAILED","message":"Not enough {stock} of \\"X\\""}}],"succeeded":1,"failed":1,"dry_run":true}';

describe('the streamed bulk report', () => {
  it('reads the results complete so far, at every cut of the stream', () => {
    for (let cut = 0; cut <= report.length; cut++) {
      const got = readReport(report.slice(0, cut));
      const complete = report.indexOf('}', report.indexOf('"a"')) < cut ? 1 : 0;
      expect(got.results.length).toBeGreaterThanOrEqual(complete);
      expect(got.done === null).toBe(cut < report.length);
    }
    expect(readReport(report)).toEqual({
      results: [
        { id: 'a', ok: true },
        { id: 'b', ok: false, error: { code: 'GUARD_FAILED', message: 'Not enough {stock} of "X"' } },
      ],
      done: { succeeded: 1, failed: 1, dry_run: true },
    });
  });

  it('reads an empty report and a beginning', () => {
    expect(readReport('')).toEqual({ results: [], done: null });
    expect(readReport('{"results":[')).toEqual({ results: [], done: null });
    expect(readReport('{"results":[],"succeeded":0,"failed":0}')).toEqual({ results: [], done: { succeeded: 0, failed: 0 } });
  });

  it('offers the transitions open to the roles, never the create one', () => {
    const ts = [
      { name: 'place', create: true, roles: ['sales'] },
      { name: 'approve', create: false, roles: ['manager'] },
      { name: 'submit', create: false, roles: ['sales', 'manager'] },
    ];
    expect(bulkTransitions(ts, ['sales']).map((t) => t.name)).toEqual(['submit']);
    expect(bulkTransitions(ts, ['manager']).map((t) => t.name)).toEqual(['approve', 'submit']);
    expect(bulkTransitions(ts, [])).toEqual([]);
  });

  it('groups the failures by message, most frequent first', () => {
    const results = [
      { id: '1', ok: false, error: { code: 'G', message: 'short' } },
      { id: '2', ok: true },
      { id: '3', ok: false, error: { code: 'R', message: 'role' } },
      { id: '4', ok: false, error: { code: 'G', message: 'short' } },
    ];
    expect(failureGroups(results)).toEqual([
      { message: 'short', ids: ['1', '4'] },
      { message: 'role', ids: ['3'] },
    ]);
  });
});
