import { z } from 'zod';
import { forbidden } from '../../lib/errors';
import { decodeCursor, idKey, pageOf, pageQuerySchema } from '../../lib/pagination';
import type { Repositories } from '../../models';
import { deviceIdSchema } from '../../schemas/device-protocol';
import { auditListResponse } from '../openapi/response-schemas';
import type { ApiContext } from '../context';
import { isAdminCaller } from '../middleware/authenticate';
import { routesWith } from '../route';

/** The admin audit route's port: the admin directory and the audit repository. */
export type AdminAuditPorts = Pick<ApiContext, 'admin'> & { repos: Pick<Repositories, 'audit'> };
const route = routesWith<AdminAuditPorts>();

/** `GET /admin/audit`: `?limit` 1–200 (default 50), `?cursor`, and optional filters. */
export const adminAuditQuerySchema = pageQuerySchema(50).extend({
  actorId: z.uuid().optional().describe('Only entries of this user (who did it)'),
  deviceId: deviceIdSchema.optional().describe('Only entries of this device (its tool calls)'),
  action: z
    .string()
    .regex(/^[a-z0-9_.]{1,100}$/, 'action is 1-100 characters of a-z 0-9 _ .')
    .optional()
    .describe('Only entries of this action, e.g. `device.tool_call`, `hitl.approved`, `api_key.created`'),
});

/** Who did what from where: the whole audit trail, for admins. */
export const adminAuditRoutes = [
  route({
    method: 'get',
    path: '/admin/audit',
    operationId: 'listAudit',
    tags: ['operations'],
    auth: 'bearer',
    summary: 'The audit trail (admins), newest first, in pages',
    description:
      'Admins only (403 otherwise; an API key never carries admin rights). Each row says who acted (`actorId`, `onBehalfOf`), what ' +
      '(`action`, target, `details`) and from where: `ip` and `userAgent` of the HTTP request behind it, `deviceId` of a device ' +
      'tool call (whose `details` carry `tool`, `outcome` and the `approvalId` it waited for). Filter by `actorId`, `deviceId`, `action`; pass `nextCursor` as `?cursor` for older rows.',
    query: adminAuditQuerySchema,
    responses: { 200: { description: 'Audit rows, newest first', schema: auditListResponse } },
    errors: [400, 403],
    handler: async (input, ctx) => {
      // Rights first: a non-admin is refused whatever the query says.
      if (!(await isAdminCaller(ctx.admin.directory, input.user))) throw forbidden('Admins only');
      const { query } = input;
      const beforeId = query.cursor ? decodeCursor(query.cursor, idKey) : undefined;
      const rows = await ctx.repos.audit.listPage({
        limit: query.limit + 1,
        beforeId,
        actorId: query.actorId,
        deviceId: query.deviceId,
        action: query.action,
      });
      const page = pageOf(rows, query.limit, (entry) => [entry.id]);
      return { audit: page.items, nextCursor: page.nextCursor };
    },
  }),
];
