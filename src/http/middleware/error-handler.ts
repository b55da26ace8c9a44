import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';

/** Errors the body parser raises, by its `type`. */
const BODY_ERRORS: Record<string, [number, string, string]> = {
  'entity.parse.failed': [400, 'invalid_json', 'Request body is not valid JSON'],
  'entity.too.large': [413, 'payload_too_large', 'Request body is larger than 1 MB'],
  'encoding.unsupported': [415, 'unsupported_encoding', 'Unsupported content encoding'],
  'charset.unsupported': [415, 'unsupported_charset', 'Unsupported charset'],
  'request.aborted': [400, 'request_aborted', 'Request aborted'],
};

/** True for connection failures of Redis or PostgreSQL: the request may succeed later (503). */
function isUnavailable(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  const code = (error as { code?: string })?.code;
  return (
    /Stream isn't writeable|Connection is closed|enableOfflineQueue|ECONNREFUSED|Connection terminated|connect ETIMEDOUT|timeout exceeded when trying to connect/i.test(
      message,
    ) ||
    code === 'ECONNREFUSED' ||
    code === '57P01' ||
    code === '57P03'
  );
}

/** An http-errors style 4xx (Express's router and body parser raise them) meant for the client. */
function isClientError(error: unknown): boolean {
  const status = (error as { status?: unknown })?.status;
  return typeof status === 'number' && status >= 400 && status < 500 && (error as { expose?: unknown }).expose !== false;
}

/** Renders every error as `{"error":{"code","message","details?"}}`; unknown errors are logged and hidden. */
export function errorHandler(logger: Logger) {
  return (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    let status = 500;
    let body: { code: string; message: string; details?: unknown } = { code: 'internal_error', message: 'Internal server error' };
    const bodyError = BODY_ERRORS[(error as { type?: string })?.type ?? ''];
    if (error instanceof AppError) {
      status = error.status;
      body = { code: error.code, message: error.message, ...(error.details !== undefined ? { details: error.details } : {}) };
      for (const [name, value] of Object.entries(error.headers ?? {})) res.setHeader(name, value);
    } else if (bodyError) {
      [status, body.code, body.message] = bodyError;
      // A route that takes larger bodies (a chat message with files) says its own limit.
      const limit = (error as { limit?: unknown }).limit;
      if (body.code === 'payload_too_large' && typeof limit === 'number' && limit !== 1024 * 1024)
        body.message = `Request body is larger than ${limit} bytes`;
    } else if (isClientError(error)) {
      // e.g. the router's 400 for a path parameter that is not UTF-8 (`%ED%A0%80`): a fixed text,
      // the error's own message quotes the input.
      status = (error as { status: number }).status;
      body = { code: 'bad_request', message: 'The request could not be read (malformed URL or parameters)' };
    } else if (isUnavailable(error)) {
      status = 503;
      body = { code: 'service_unavailable', message: 'A backing service is unavailable; retry shortly' };
      res.setHeader('Retry-After', '2');
      logger.warn({ err: error, reqId: req.id }, 'dependency unavailable');
    } else {
      logger.error({ err: error, reqId: req.id }, 'unhandled error');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status).json({ error: body });
  };
}

export function notFoundHandler(req: Request, res: Response) {
  res.status(404).json({ error: { code: 'not_found', message: `No route for ${req.method} ${req.path}` } });
}
