import type { Request } from 'express';
import { Router } from 'express';
import { notFound } from '../../lib/errors';
import { toHitlView } from '../../models/hitl-repository';
import { uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

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
