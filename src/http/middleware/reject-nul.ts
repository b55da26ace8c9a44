import type { NextFunction, Request, Response } from 'express';
import { badRequest } from '../../lib/errors';
import { findUnstorableText } from '../../lib/text-safety';

const MESSAGE = 'Text must be valid Unicode without NUL (\\u0000) characters or lone surrogates';

/**
 * PostgreSQL text and jsonb cannot store U+0000, and jsonb refuses lone surrogates ("\ud800"), so a
 * request carrying one would fail at the insert (a 500) after validation passed. Bodies and query
 * strings are checked here, once, for every route: 400 `validation_failed` naming where.
 */
export function rejectNulCharacters(req: Request, _res: Response, next: NextFunction): void {
  const inBody = findUnstorableText(req.body);
  if (inBody) return next(badRequest(MESSAGE, [{ path: inBody, message: 'not valid Unicode text' }]));
  const inQuery = findUnstorableText(req.query);
  if (inQuery) return next(badRequest(MESSAGE, [{ path: `query.${inQuery}`, message: 'not valid Unicode text' }]));
  next();
}
