import { describe, expect, it } from 'vitest';
import { documentTitle } from './useDocumentTitle';

describe('documentTitle', () => {
  it('joins what is known, the studio last', () => {
    expect(documentTitle('Order', undefined, 'chemichemi')).toBe('Order · chemichemi · Switchyard studio');
    expect(documentTitle('')).toBe('Switchyard studio');
  });
});
