import { describe, expect, it } from 'vitest';
import { ApiError, asSentence, errorMessage, parseEnvelope } from './envelope';

describe('parseEnvelope', () => {
  it('reads code, message and details', () => {
    const body = { error: { code: 'GUARD_FAILED', message: 'credit limit', details: { guard: 0 } } };
    expect(parseEnvelope(409, body)).toEqual({ code: 'GUARD_FAILED', message: 'credit limit', details: { guard: 0 } });
  });

  it('leaves details out when absent', () => {
    expect(parseEnvelope(401, { error: { code: 'UNAUTHORIZED', message: 'no' } })).toEqual({
      code: 'UNAUTHORIZED',
      message: 'no',
    });
  });

  it('names the status when the body is not an envelope', () => {
    expect(parseEnvelope(502, '<html>')).toEqual({ code: 'HTTP_502', message: expect.stringContaining('502') as string });
    expect(parseEnvelope(404, { error: 'nope' }).code).toBe('HTTP_404');
    expect(parseEnvelope(400, null).code).toBe('HTTP_400');
  });
});

describe('errorMessage', () => {
  it('shows the server message of an ApiError', () => {
    expect(errorMessage(new ApiError(401, { code: 'UNAUTHORIZED', message: 'invalid tenant, email or password' }))).toBe(
      'Invalid tenant, email or password',
    );
  });

  it('shows a server message as a sentence', () => {
    expect(asSentence('the token is invalid')).toBe('The token is invalid');
    expect(asSentence('')).toBe('');
    expect(asSentence('Already capitalised')).toBe('Already capitalised');
  });

  it('explains a network failure', () => {
    expect(errorMessage(new TypeError('Failed to fetch'))).toMatch(/cannot be reached/);
  });

  it('has something for anything else', () => {
    expect(errorMessage(42)).toBe('Something went wrong.');
  });
});
