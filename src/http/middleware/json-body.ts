import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { badRequest } from '../../lib/errors';
import { exceedsJsonDepth, TOO_DEEP_MESSAGE } from '../../lib/json-depth';

/** The Content-Types read as JSON unless a router says otherwise. */
const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * A parsed body that nests deeper than the bound is refused here, right after parsing and before
 * any route, edge or check walks it: 400 `validation_failed`, nothing read further.
 */
export function rejectDeepJson(req: Request, _res: Response, next: NextFunction): void {
  if (exceedsJsonDepth(req.body)) return next(badRequest(TOO_DEEP_MESSAGE, [{ path: '(body)', message: 'nested too deep' }]));
  next();
}

/**
 * The one JSON body parser of every router that reads bodies: strict JSON up to `limit`, then the
 * depth bound. `type` narrows or widens the Content-Types read (default: JSON and `+json`).
 */
export function jsonBody(limit: string | number, type: string | string[] = JSON_TYPES): RequestHandler[] {
  return [express.json({ limit, strict: true, type }), rejectDeepJson];
}
