import type { NextFunction, Request, Response } from 'express';
import { badRequest } from '../../lib/errors';

/** Whether any string (key or value) in a parsed JSON value holds a NUL character. */
function hasNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth > 64 || value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some((item) => hasNul(item, depth + 1));
  return Object.entries(value).some(([key, item]) => key.includes('\u0000') || hasNul(item, depth + 1));
}

/**
 * PostgreSQL text and jsonb cannot store U+0000, so a body carrying one would fail at the insert
 * (a 500) after validation passed. It is refused up front as a 400 instead, for every route.
 */
export function rejectNulCharacters(req: Request, _res: Response, next: NextFunction): void {
  if (hasNul(req.body)) return next(badRequest('Text may not contain NUL (\\u0000) characters'));
  next();
}
