import pino, { type Logger } from 'pino';

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

/** The root logger; components take `logger.child({ component })`. */
export function createLogger(options: { level: string; name?: string }): Logger {
  return pino({
    name: options.name ?? 'switchboard',
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
  });
}
