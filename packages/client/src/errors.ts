/**
 * Every non-2xx answer of the API, in the API's error shape: `{"error":{"code","message","details?"}}`.
 * A body that is not in that shape (a proxy's HTML page, an empty 502) still becomes one, with
 * `code` `http_<status>`, so callers only ever branch on `status` and `code`.
 */
export class SwitchboardApiError extends Error {
  override readonly name = 'SwitchboardApiError';

  constructor(
    /** HTTP status (0 when the request never got an answer). */
    readonly status: number,
    /** Stable machine-readable code, e.g. `not_found`, `validation_failed`, `rate_limited`. */
    readonly code: string,
    message: string,
    /** Extra detail the server sent, e.g. `[{path, message}]` for a 400. */
    readonly details?: unknown,
    /** Seconds from a `Retry-After` header (429, 503), when present. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  /** Builds the error from a response whose body was read as text. */
  static fromResponse(status: number, text: string, headers?: Headers): SwitchboardApiError {
    const retryAfter = Number.parseInt(headers?.get('retry-after') ?? '', 10);
    const retryAfterSeconds = Number.isFinite(retryAfter) ? retryAfter : undefined;
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
      const error = body?.error;
      if (error && typeof error.code === 'string') {
        return new SwitchboardApiError(
          status,
          error.code,
          typeof error.message === 'string' ? error.message : error.code,
          error.details,
          retryAfterSeconds,
        );
      }
    } catch {
      // not JSON: fall through
    }
    return new SwitchboardApiError(status, `http_${status}`, text.slice(0, 200) || `HTTP ${status}`, undefined, retryAfterSeconds);
  }
}

/** Type guard that also narrows on a code: `isApiError(e, 'not_found')`. */
export function isApiError(error: unknown, code?: string): error is SwitchboardApiError {
  return error instanceof SwitchboardApiError && (code === undefined || error.code === code);
}
