import { z } from 'zod';
import { decodeCursor, idKey, pageOf } from '../../lib/pagination';
import { toHitlView } from '../../models/hitl-repository';
import { approvalListResponse, approvalView } from '../openapi/response-schemas';
import { routesWith } from '../route';
import { approvalIdParam } from './params';
import type { ApiContext } from '../context';
import type { Repositories } from '../../models';
import { deciderOf } from '../middleware/authenticate';
import { MAX_REPLY_CHARS, personRequired } from '../../turns/approvals';

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

/** `PUT /hitl/requests/:id/approve`: optionally, the arguments to run the call with instead of the model's. */
export const approveBodySchema = z.strictObject({
  arguments: z
    .record(z.string(), z.unknown())
    .optional()
    .describe("Run the call with these arguments instead of the model's (checked against the tool's schema; the audit records the edit)"),
});
/** `PUT /hitl/requests/:id/reject`: optionally, a reply the model reads as the tool's result (the turn goes on). */
export const rejectBodySchema = z.strictObject({
  message: z
    .string()
    .max(MAX_REPLY_CHARS)
    .optional()
    .describe("A reply the model reads instead of the tool's result; the turn (or the agentflow node) goes on with it"),
});

/**
 * Approvals: read a request, approve or reject it. Its requester sees and decides it; a request of
 * a room thread's turn is read by the thread's members and decided by whom the thread's policy
 * names (a vote under a quorum), or by the one member it is addressed to (the owner of a lent
 * device); a member who may not decide gets 403, anyone else 404 (as for a missing one); a second
 * decision is 409. A decision
 * needs a signed-in person: with an API key it is 403 `person_required` and the request stays
 * pending (a key may read requests, never decide them). An approval may run the call with edited
 * `arguments` (checked against the tool's schema: 400 and nothing decided when they do not fit); a
 * rejection may carry a `message`, which the model reads as the tool's result, and the turn goes on.
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
    summary:
      'Approve a pending tool call, optionally with edited `arguments` (a signed-in session only: an API key is 403 `person_required`)',
    params: approvalIdParam,
    body: approveBodySchema,
    bodyOptional: true,
    responses: { 200: { description: 'The decided request', schema: approvalView } },
    errors: [400, 403, 404, 409],
    handler: async (input, ctx) => {
      if (!deciderOf(input.user).person) throw personRequired();
      const { arguments: args } = input.body;
      return toHitlView(await ctx.approvals.decide(deciderOf(input.user), input.params.id, true, 'http', { arguments: args }));
    },
  }),

  route({
    method: 'put',
    path: '/hitl/requests/:id/reject',
    operationId: 'rejectRequest',
    tags,
    auth: 'bearer',
    summary:
      'Reject a pending tool call, optionally with a `message` the model reads as its result (a signed-in session only: an API key is 403 `person_required`)',
    params: approvalIdParam,
    body: rejectBodySchema,
    bodyOptional: true,
    responses: { 200: { description: 'The decided request', schema: approvalView } },
    errors: [400, 403, 404, 409],
    handler: async (input, ctx) => {
      if (!deciderOf(input.user).person) throw personRequired();
      const { message } = input.body;
      return toHitlView(await ctx.approvals.decide(deciderOf(input.user), input.params.id, false, 'http', { message }));
    },
  }),
];
