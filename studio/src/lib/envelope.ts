// The server's error envelope: `{"error": {"code": "…", "message": "…", "details": …}}`.

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

/** An answer that was not a success, with the envelope's code and message when it had one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, body: ApiErrorBody) {
    super(body.message);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code;
    this.details = body.details;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The envelope in `body`, or a generic one naming the status when `body` is not an envelope. */
export function parseEnvelope(status: number, body: unknown): ApiErrorBody {
  if (isRecord(body) && isRecord(body.error)) {
    const { code, message, details } = body.error;
    if (typeof code === 'string' && typeof message === 'string') {
      return details === undefined ? { code, message } : { code, message, details };
    }
  }
  return { code: `HTTP_${String(status)}`, message: fallbackMessage(status) };
}

function fallbackMessage(status: number): string {
  if (status === 0) return 'The server cannot be reached.';
  if (status >= 500) return `The server failed (HTTP ${String(status)}). Try again later.`;
  return `The request failed (HTTP ${String(status)}).`;
}

/** A server message (written lower-case, as a clause) shown as a sentence: capitalised. */
export function asSentence(message: string): string {
  return message.length === 0 ? message : message.charAt(0).toUpperCase() + message.slice(1);
}

/** What to show for any thrown value. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return asSentence(e.message);
  if (e instanceof TypeError) return fallbackMessage(0);
  if (e instanceof Error) return e.message;
  return 'Something went wrong.';
}
