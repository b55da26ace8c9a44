import { z } from 'zod';
import { decodeCursor, idKey, pageOf } from '../../lib/pagination';
import { toHitlView } from '../../models/hitl-repository';
import { approvalListResponse, approvalView } from '../openapi/response-schemas';
import { routesWith } from '../route';
import { approvalIdParam } from './params';
import type { ApiContext } from '../context';
import type { Repositories } from '../../models';
import { deciderOf } from '../middleware/authenticate';

/** The HITL routes' port: only the approval service and the hitl repository. */
export type HitlPorts = { approvals: Pick<ApiContext['approvals'], 'get' | 'decide'> } & { repos: Pick<Repositories, 'hitl'> };
const route = routesWith<HitlPorts>();

/** `GET /hitl/requests`: the caller's own approval requests, optionally by status. */
export const hitlListQuerySchema = z.strictObject({
  status: z.enum(['pending', 'approved', 'rejected', 'timeout']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  /** The previous page's `nextCursor` (newest first). */
  cursor: z.string().min(1).max(500).optional(),
});

const tags = ['approvals'];

/**
 * Approvals: read a request, approve or reject it. Its requester sees and decides it; a request of
 * a room thread's turn is read by the thread's members and decided by whom the thread's policy
 * names (a vote under a quorum), or by the one member it is addressed to (the owner of a lent
 * device); a member who may not decide gets 403, anyone else 404 (as for a missing one); a second
 * decision is 409. A decision
 * needs a signed-in person: with an API key it is 403 `person_required` and the request stays
 * pending (a key may read requests, never decide them).
 */
export const hitlRoutes = [
  // The caller's own requests (newest first), e.g. `?status=pending` for a console's approvals list.
  route({
    method: 'get',
    path: '/hitl/requests',
    operationId: 'listApprovalRequests',
    tags,
    auth: 'bearer',
    summary: "The caller's own approval requests, newest first (e.g. `?status=pending`)",
    query: hitlListQuerySchema,
    responses: {
      200: {
        description: 'The requests, newest first; `nextCursor` (present when older requests follow) goes back as `?cursor`',
        schema: approvalListResponse,
      },
    },
    handler: async ({ user, query }, ctx) => {
      const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const rows = await ctx.repos.hitl.listForUser(user.id, { status: query.status, limit: query.limit + 1, beforeId });
      const page = pageOf(rows, query.limit, (row) => [row.id]);
      // nextCursor only when another page follows: the last page keeps the body it always had.
      return { requests: page.items.map(toHitlView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  }),

  route({
    method: 'get',
    path: '/hitl/requests/:id',
    operationId: 'getApprovalRequest',
    tags,
    auth: 'bearer',
    summary: 'An approval request (its requester, the member it is addressed to, or a member of its room thread)',
    params: approvalIdParam,
    responses: { 200: { description: 'The request', schema: approvalView } },
    errors: [404],
    handler: async ({ user, params }, ctx) => toHitlView(await ctx.approvals.get(user.id, params.id)),
  }),

  route({
    method: 'put',
    path: '/hitl/requests/:id/approve',
    operationId: 'approveRequest',
    tags,
    auth: 'bearer',
    summary: 'Approve a pending tool call (a signed-in session only: an API key is 403 `person_required`)',
    params: approvalIdParam,
    responses: { 200: { description: 'The decided request', schema: approvalView } },
    errors: [403, 404, 409],
    handler: async ({ user, params }, ctx) => toHitlView(await ctx.approvals.decide(deciderOf(user), params.id, true, 'http')),
  }),

  route({
    method: 'put',
    path: '/hitl/requests/:id/reject',
    operationId: 'rejectRequest',
    tags,
    auth: 'bearer',
    summary: 'Reject a pending tool call (a signed-in session only: an API key is 403 `person_required`)',
    params: approvalIdParam,
    responses: { 200: { description: 'The decided request', schema: approvalView } },
    errors: [403, 404, 409],
    handler: async ({ user, params }, ctx) => toHitlView(await ctx.approvals.decide(deciderOf(user), params.id, false, 'http')),
  }),
];
