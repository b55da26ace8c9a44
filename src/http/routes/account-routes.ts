import { z } from 'zod';
import { writeAccountExport } from '../../account/account-export';
import { ExportAborted, JsonStreamWriter } from '../../account/json-writer';
import { notFound } from '../../lib/errors';
import { RateLimiter } from '../../lib/rate-limiter';
import type { Repositories } from '../../models';
import { requireSession } from '../middleware/authenticate';
import { perContext, routesWith } from '../route';
import type { ApiContext } from '../context';

/** The account routes' port: the account repository (export), the account service (deletion), Redis for the export's limit. */
export type AccountPorts = Pick<ApiContext, 'account' | 'redis' | 'logger'> & {
  config: Pick<ApiContext['config'], 'redis'>;
  repos: Pick<Repositories, 'account'>;
};
const route = routesWith<AccountPorts>();
const tags = ['auth'];

/** Exports a user may start per hour: each reads every row they own, so it is not a polling endpoint. */
export const EXPORTS_PER_HOUR = 5;
const HOUR_MS = 3_600_000;

/** `DELETE /me`: the account's email, typed again, as the confirmation. */
export const deleteAccountSchema = z.strictObject({
  confirm: z.string().min(1).max(320).describe('The account’s email address, exactly as registered (case does not matter)'),
});

const deletedAccountResponse = z.object({
  deleted: z.literal(true),
  canvasesDeleted: z.array(z.uuid()).describe('Canvases you owned with no editor: deleted with their blocks'),
  canvasesTransferred: z
    .array(z.object({ canvasId: z.uuid(), to: z.uuid() }))
    .describe('Canvases you owned that had an editor: now owned by the longest-standing editor'),
});

const limiter = perContext((ctx: AccountPorts) => new RateLimiter(ctx.redis, ctx.config.redis.keyPrefix));

const SESSION_ONLY = 'Needs a signed-in session: an API key cannot export or delete the account (403).';

/** `GET /me/export` and `DELETE /me`: a user's own data, all of it, out or gone. */
export const accountRoutes = [
  route({
    method: 'get',
    path: '/me/export',
    operationId: 'exportAccount',
    tags,
    auth: 'bearer',
    summary: 'Everything Switchboard holds about you, as one JSON document (a download)',
    description:
      'Streamed as it is read, a page of rows at a time: profile, the canvases you own with their blocks, the canvases you are a member of ' +
      '(id and role only), chat sessions with their messages and notes, approvals, flows with their embeds and executions, agents and their ' +
      'runs, OAuth connections, the PSA connection, generations, model usage and API keys. Secrets are never included: no password, token or key hash, no ' +
      'sealed OAuth token or PSA credential (a stored credential says `stored: true`). ' +
      `Limited to ${EXPORTS_PER_HOUR} exports an hour (429 with Retry-After). ${SESSION_ONLY}`,
    responses: {
      200: {
        description: 'The export (`format: "switchboard.account-export.v1"`), sent as an attachment',
        schema: z.object({ format: z.string(), exportedAt: z.string(), profile: z.object({ id: z.uuid(), email: z.string() }) }).loose(),
        headers: { 'Content-Disposition': '`attachment; filename="switchboard-export-<date>.json"`' },
      },
    },
    errors: [403, 404, 429],
    handler: async ({ user, res }, ctx) => {
      requireSession(user, 'Exporting the account');
      await limiter(ctx).take('account export', user.id, EXPORTS_PER_HOUR, HOUR_MS);
      const out = new JsonStreamWriter(res);
      const started = () => res.headersSent;
      res.status(200);
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="switchboard-export-${new Date().toISOString().slice(0, 10)}.json"`);
      res.setHeader('Cache-Control', 'no-store');
      try {
        if (!(await writeAccountExport(ctx.repos.account, user.id, out))) throw notFound('User');
        res.end();
      } catch (error) {
        // Once bytes are out the status cannot change: the reader sees a cut document, never a 200 that parses.
        if (!started()) {
          res.removeHeader('Content-Disposition');
          throw error;
        }
        if (!(error instanceof ExportAborted)) ctx.logger.warn({ err: error, userId: user.id }, 'account export failed midway');
        res.destroy();
      }
    },
  }),

  route({
    method: 'delete',
    path: '/me',
    operationId: 'deleteAccount',
    tags,
    auth: 'bearer',
    summary: 'Delete your account, confirmed with your email',
    description:
      'In one transaction: every sign-in session and API key is revoked (their open sockets close on every node, their tokens answer 401); ' +
      'each canvas you own goes to its longest-standing editor, or is deleted with its blocks when it has none; your chat sessions, flows, ' +
      'agents, OAuth connections, generations and keys are deleted; model usage is kept without your id; blocks you wrote on canvases ' +
      'that stay are kept as part of them. An `account.deleted` audit row is written. ' +
      `A \`confirm\` that is not your email is 400 \`confirmation_mismatch\` and changes nothing. ${SESSION_ONLY}`,
    body: deleteAccountSchema,
    responses: { 200: { description: 'What happened to your canvases', schema: deletedAccountResponse } },
    errors: [400, 403, 404],
    handler: async (input, ctx) => {
      requireSession(input.user, 'Deleting the account');
      const { confirm } = input.body;
      const deleted = await ctx.account.delete(input.user, confirm);
      return { deleted: true as const, canvasesDeleted: deleted.canvasesDeleted, canvasesTransferred: deleted.canvasesTransferred };
    },
  }),
];
