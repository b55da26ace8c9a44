import type { Request } from 'express';
import { Router } from 'express';
import { z } from 'zod';
import { notFound, parseOr400 } from '../../lib/errors';
import { decodeCursor, idKey, pageOf } from '../../lib/pagination';
import { toHitlView } from '../../models/hitl-repository';
import { uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

/** `GET /hitl/requests`: the caller's own approval requests, optionally by status. */
export const hitlListQuerySchema = z.strictObject({
  status: z.enum(['pending', 'approved', 'rejected', 'timeout']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  /** The previous page's `nextCursor` (newest first). */
  cursor: z.string().min(1).max(500).optional(),
});

/**
 * Approvals (SPEC §6, 0021): read a request, approve or reject it. Only its requester sees or
 * decides it (anyone else: 404, as for a missing one, 0014); a second decision is 409.
 */
export function hitlRoutes(ctx: ApiContext): Router {
  const router = Router();

  const requestId = (req: Request) => {
    const id = uuidParam.safeParse(req.params.id);
    if (!id.success) throw notFound('Approval request');
    return id.data;
  };

  // The caller's own requests (newest first), e.g. `?status=pending` for a console's approvals list.
  router.get('/hitl/requests', async (req, res) => {
    const query = parseOr400(hitlListQuerySchema, req.query, 'query');
    const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
    const rows = await ctx.repos.hitl.listForUser(currentUser(req).id, { status: query.status, limit: query.limit + 1, beforeId });
    const page = pageOf(rows, query.limit, (row) => [row.id]);
    // nextCursor only when another page follows: the last page keeps the body it always had.
    res.json({ requests: page.items.map(toHitlView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
  });

  router.get('/hitl/requests/:id', async (req, res) => {
    res.json(toHitlView(await ctx.approvals.get(currentUser(req).id, requestId(req))));
  });

  router.put('/hitl/requests/:id/approve', async (req, res) => {
    res.json(toHitlView(await ctx.approvals.decide(currentUser(req).id, requestId(req), true, 'http')));
  });

  router.put('/hitl/requests/:id/reject', async (req, res) => {
    res.json(toHitlView(await ctx.approvals.decide(currentUser(req).id, requestId(req), false, 'http')));
  });

  return router;
}
