/**
 * What a log may say about an error: its class, codes,
 * where it was thrown, and its cause the same way — never its message or payload, which carry user
 * content (drizzle's query error holds the SQL parameters: block text, titles, prompts; a pg error's
 * `detail` holds key values; a provider's message may quote the prompt).
 *
 * Messages are kept only when they match a short list of texts known to hold no user data
 * (connection failures), because those are what an operator needs at 3 a.m.
 */
export interface RedactedError {
  type: string;
  code?: string | number;
  message?: string;
  /** PostgreSQL: where it failed, never what with. */
  routine?: string;
  constraint?: string;
  table?: string;
  column?: string;
  syscall?: string;
  status?: number;
  stack?: string;
  cause?: RedactedError;
}

const SAFE_MESSAGES =
  /^(Connection is closed\.?|Stream isn't writeable.*|(connect|read|write) (ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH)\b[\w.:[\] -]*|getaddrinfo \w+ [\w.-]+|Command timed out|Redis not ready after \d+ ms|Connection terminated( unexpectedly| due to connection timeout)?|timeout exceeded when trying to connect|The operation was aborted\.?|This operation was aborted)$/;

/** A log-safe description of `error` (any thrown value). */
export function redactError(error: unknown, depth = 0): RedactedError {
  if (error === null || typeof error !== 'object') return { type: error === null ? 'null' : typeof error };
  // An Error, or what pino's standard serializer made of one ({type, message, stack, ...}).
  const fields = error as Record<string, unknown>;
  const className = error instanceof Error ? error.constructor?.name : undefined;
  const out: RedactedError = {
    type:
      className && className !== 'Object'
        ? className
        : typeof fields.type === 'string'
          ? fields.type
          : typeof fields.name === 'string'
            ? fields.name
            : 'Error',
  };
  if (typeof fields.code === 'string' || typeof fields.code === 'number') out.code = fields.code;
  if (typeof fields.message === 'string' && SAFE_MESSAGES.test(fields.message)) out.message = fields.message;
  for (const key of ['routine', 'constraint', 'table', 'column', 'syscall'] as const) {
    if (typeof fields[key] === 'string') out[key] = fields[key];
  }
  if (typeof fields.status === 'number') out.status = fields.status;
  // The stack's first line repeats the message: keep only the frames.
  if (typeof fields.stack === 'string')
    out.stack = fields.stack
      .split('\n')
      .filter((line) => /^\s+at /.test(line))
      .slice(0, 12)
      .join('\n');
  if (fields.cause !== undefined && depth < 3) out.cause = redactError(fields.cause, depth + 1);
  return out;
}

/**
 * One line for places that keep a message (a failed job's `failedReason`, a run's `errors`):
 * `DrizzleQueryError <- DatabaseError 23505 (constraint blocks_rank_key)`, with the safe messages
 * of `redactError` only.
 */
export function describeRedacted(error: unknown): string {
  const parts: string[] = [];
  for (let current: RedactedError | undefined = redactError(error); current; current = current.cause) {
    let part = current.type;
    if (current.code !== undefined) part += ` ${current.code}`;
    if (current.message) part += `: ${current.message}`;
    const where = [current.constraint && `constraint ${current.constraint}`, current.table && `table ${current.table}`]
      .filter(Boolean)
      .join(', ');
    if (where) part += ` (${where})`;
    parts.push(part);
  }
  return parts.join(' <- ');
}
