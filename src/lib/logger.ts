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
  'req.headers["x-api-key"]',
  'headers["x-api-key"]',
  '*.apiKey',
  'secret',
  '*.secret',
  '*.sealedValue',
];

export type LogFormat = 'json' | 'pretty';

/**
 * `LOG_FORMAT` when set; else human-readable on a terminal outside production, and JSON (one
 * object per line, for log shippers) everywhere else.
 */
export function logFormat(env: string, configured: LogFormat | undefined, isTTY = Boolean(process.stdout.isTTY)): LogFormat {
  return configured ?? (isTTY && env !== 'production' ? 'pretty' : 'json');
}

/**
 * The root logger; components take `logger.child({ component })`. Errors logged under `err` or
 * `error` are written as `redactError` describes them (class, codes, frames; no message or
 * payload), so no call site can leak a SQL parameter or a prompt by logging an error.
 * `destination` defaults to stdout (tests pass one to read what was logged); `format: 'pretty'`
 * writes pino-pretty lines to stdout instead.
 */
export function createLogger(options: { level: string; name?: string; destination?: DestinationStream; format?: LogFormat }): Logger {
  const settings = {
    name: options.name ?? 'switchboard',
    level: options.level,
    // Redaction and the error serializers run before formatting, so pretty output is as clean as JSON.
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: (error: unknown) => redactError(error), error: (error: unknown) => redactError(error) },
    base: { pid: process.pid },
  };
  const pretty = options.format === 'pretty' && !options.destination ? prettyStream() : undefined;
  const logger = pino(settings, pretty ?? options.destination);
  if (options.format === 'pretty' && !options.destination && !pretty)
    logger.warn('LOG_FORMAT=pretty needs the pino-pretty package (a dev dependency): logging JSON');
  return logger;
}

/** pino-pretty as a synchronous stream in this thread (no transport worker), or undefined when not installed. */
function prettyStream(): DestinationStream | undefined {
  try {
    // Loaded only when asked for: production images install no dev dependencies.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a synchronous, optional load: an import would fail where it is not installed
    const pretty = require('pino-pretty') as (options: Record<string, unknown>) => DestinationStream;
    return pretty({ colorize: Boolean(process.stdout.isTTY), sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  } catch {
    return undefined;
  }
}
