import pino, { type DestinationStream, type Logger } from 'pino';
import { redactError } from './redact-error';

export type { Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear: credentials, and user content that must not land in
 * logs (prompts, message bodies, emails).
 */
export const REDACT_PATHS = [
  'password',
  'token',
  'accessToken',
  'refreshToken',
  'prompt',
  'email',
  'content',
  '*.password',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.prompt',
  '*.email',
  '*.content',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

/**
 * The root logger; components take `logger.child({ component })`. Errors logged under `err` or
 * `error` are written as `redactError` describes them (class, codes, frames; no message or
 * payload), so no call site can leak a SQL parameter or a prompt by logging an error (0073).
 * `destination` defaults to stdout (tests pass one to read what was logged).
 */
export function createLogger(options: { level: string; name?: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      name: options.name ?? 'switchboard',
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: (error: unknown) => redactError(error), error: (error: unknown) => redactError(error) },
      base: { pid: process.pid },
    },
    options.destination,
  );
}
