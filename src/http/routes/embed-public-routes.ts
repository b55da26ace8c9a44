import { BudgetExceededError } from '../../budget/budget-door';
import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import {
  embedTokenParam,
  FLOW_BUDGET_SPENT,
  flowChatBodySchema,
  flowNotChat,
  hashEmbedToken,
  type FlowChatBody,
} from '../../flows/flow-chat';
import { AppError, notFound } from '../../lib/errors';
import { RateLimiter } from '../../lib/rate-limiter';
import type { FlowEmbedRow } from '../../models/schema';
import type { ApiContext } from '../context';
import { jsonBody } from '../middleware/json-body';
import { rejectNulCharacters } from '../middleware/reject-nul';
import { routesWith, mountRoutes } from '../route';
import {
  answerChatTurnAsJson,
  CHAT_JSON_RESPONSE,
  CHAT_SSE_RESPONSE,
  streamChatTurn,
  type ChatTurnPorts,
  type ChatTurnStarter,
} from './flow-chat-routes';
import type { Repositories } from '../../models';
import type { Config } from '../../../config';

/** The public embed chat's port: chatflow turns, the flows repository, Redis for the embed limits. */
export type EmbedPublicPorts = ChatTurnPorts &
  Pick<ApiContext, 'redis' | 'limits'> & { flowChats: Pick<ApiContext['flowChats'], 'start'> } & {
    config: Pick<Config, 'embeds' | 'redis'>;
    repos: Pick<Repositories, 'flows'>;
  };
const route = routesWith<EmbedPublicPorts>();

declare module 'express-serve-static-core' {
  interface Request {
    /** The embed whose token the public chat path names (null: unknown or revoked). */
    embed?: FlowEmbedRow | null;
  }
}

const originNotAllowed = () => new AppError(403, 'origin_not_allowed', 'This embed may not be used from this site');

/** Per API context: the windows of the per-token and per-IP limits. */
const limiters = new WeakMap<EmbedPublicPorts, RateLimiter>();

/**
 * The body (400) first, then the token (unknown or revoked: 404), the limits per token and per
 * client IP (`EMBED_RATE_LIMIT_PER_MINUTE`, 429 with Retry-After), and the embed's chatflow.
 */
async function embedTurn(
  ctx: EmbedPublicPorts,
  req: Request,
  body: () => FlowChatBody,
): Promise<{ body: FlowChatBody; embed: FlowEmbedRow; starter: ChatTurnStarter }> {
  const checked = body();
  const embed = req.embed;
  if (!embed) throw notFound('Embed');
  let limits = limiters.get(ctx);
  if (!limits) limiters.set(ctx, (limits = new RateLimiter(ctx.redis, ctx.config.redis.keyPrefix)));
  const perMinute = ctx.config.embeds.ratePerMinute;
  // The visitor first: an address already over its limit must not go on spending the widget's budget for everyone.
  await limits.take('embed chat', `ip:${req.ip ?? 'unknown'}`, perMinute);
  await limits.take('embed chat', `token:${embed.id}`, perMinute);
  const flow = await ctx.repos.flows.find(embed.flowId);
  if (!flow) throw notFound('Embed');
  if (flow.type !== 'chatflow') throw flowNotChat();
  // The owner's plan pays for the turn: it must include flows (and local models, for a flow on one).
  await ctx.limits.requireFeature(flow.userId, 'flows');
  // The embed answers with the version it is pinned to, whatever the flow publishes since.
  const pinned =
    embed.flowVersion === flow.publishedVersion ? flow.definition : (await ctx.repos.flows.version(flow.id, embed.flowVersion))?.definition;
  if (!pinned) throw notFound('Embed');
  await ctx.limits.requireFlowModels(flow.userId, pinned);
  const owner = { id: flow.id, userId: flow.userId, version: embed.flowVersion, definition: pinned };
  // The owner's budget pays; a visitor refused by it learns that, not the owner's figures.
  const start: ChatTurnStarter['start'] = (turn) =>
    ctx.flowChats.start(owner, turn, embed.id).catch((error: unknown) => {
      throw error instanceof BudgetExceededError
        ? new AppError(429, 'budget_exceeded', FLOW_BUDGET_SPENT, undefined, error.headers)
        : error;
    });
  return { body: checked, embed, starter: { start } };
}

const PUBLIC_CHAT =
  "No JWT: the embed token opens it. A request whose `Origin` is not one of the embed's `allowedOrigins` is 403 `origin_not_allowed` with no CORS headers; " +
  'a request without `Origin` is allowed; an allowed origin gets `Access-Control-Allow-Origin` (preflight `OPTIONS` is answered too). At most ' +
  '`EMBED_RATE_LIMIT_PER_MINUTE` (default 20) requests a minute per embed token and per client IP (429 with Retry-After). A session started here belongs ' +
  "to this embed alone: another embed's session or the owner's own is 404. Billed to the flow's owner; when the owner's plan lacks flows " +
  '(or local models, for a flow on one) the turn is 403 `tier_forbidden`.';
// Checked by the handler after the body, so a malformed token is a 404 like a revoked one.
const tokenParam = {
  embedToken: {
    schema: z.string().max(200),
    description: 'The embed token (`sbe_…`) returned once by `POST /flows/:id/embeds`. Unknown or revoked: 404.',
    resource: 'Embed',
  },
};
const tags = ['flows'];

/** The public chat of a chatflow's embed, declared once (see `../route.ts`). */
export const embedPublicRoutes = [
  route({
    method: 'post',
    path: '/embed/public/:embedToken/chat',
    operationId: 'embedChat',
    tags,
    auth: 'public',
    summary: "One turn of an embed's chatflow, as JSON (public, origin-checked)",
    description: PUBLIC_CHAT,
    params: tokenParam,
    body: flowChatBodySchema,
    responses: { 200: CHAT_JSON_RESPONSE },
    errors: [403, 404, 409, 429, 503],
    handler: async (input, ctx) => {
      const { body, starter } = await embedTurn(ctx, input.req, () => input.body);
      await answerChatTurnAsJson(ctx, input.res, starter, body);
    },
  }),

  route({
    method: 'post',
    path: '/embed/public/:embedToken/chat/stream',
    operationId: 'embedChatStream',
    tags,
    auth: 'public',
    summary: "One turn of an embed's chatflow, as server-sent events (public, origin-checked)",
    description: PUBLIC_CHAT,
    params: tokenParam,
    body: flowChatBodySchema,
    responses: { 200: CHAT_SSE_RESPONSE },
    errors: [403, 404, 409, 429, 503],
    handler: async (input, ctx) => {
      const { body, embed, starter } = await embedTurn(ctx, input.req, () => input.body);
      // Visitors' streams count against the embed, not against the owner's own stream cap.
      await streamChatTurn(ctx, input.req, input.res, starter, body, `embed:${embed.id}`);
    },
  }),
];

/**
 * The router of the public embed chat. Before the routes: the page's `Origin` (not one of the
 * embed's: 403 `origin_not_allowed` with no CORS headers; none: allowed, e.g. a server), CORS
 * headers for an allowed origin, preflight `OPTIONS`, then its own JSON parser and text check — so
 * even a refused body answers with CORS headers the widget can read. Mounted on the app before the
 * API's Bearer authentication.
 */
export function embedPublicRouter(ctx: ApiContext): Router {
  const router = Router();
  router.use('/embed/public/:embedToken', ...embedAccess(ctx));
  return mountRoutes(router, embedPublicRoutes, ctx);
}

/** What every public embed request passes first: the token and `Origin` check (and CORS), the JSON body, the NUL check. */
export function embedAccess(ctx: ApiContext): RequestHandler[] {
  const access = async (req: Request, res: Response, next: NextFunction) => {
    const token = embedTokenParam.safeParse(req.params.embedToken);
    const embed = token.success ? await ctx.repos.embeds.findByTokenHash(hashEmbedToken(token.data)) : null;
    const origin = req.headers.origin;
    if (embed && origin !== undefined) {
      if (!embed.allowedOrigins.includes(origin)) throw originNotAllowed();
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', 'X-Chat-Session-Id, Retry-After, X-Request-Id, X-Vercel-AI-UI-Message-Stream');
    }
    res.append('Vary', 'Origin');
    if (req.method === 'OPTIONS') {
      if (!embed) throw notFound('Embed');
      if (origin !== undefined) {
        res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Vercel-AI-UI-Message-Stream');
        res.setHeader('Access-Control-Max-Age', '600');
      }
      return void res.status(204).end();
    }
    req.embed = embed;
    next();
  };
  return [access, ...jsonBody(ctx.config.http.bodyLimit), rejectNulCharacters];
}

/**
 * One embed turn as the public chat route checks it (limits per IP and token, the owner's plan),
 * for another edge that answers it in its own protocol (the AI SDK's UI message stream).
 */
export async function embedTurnFor(ctx: ApiContext, req: Request, body: FlowChatBody) {
  const { embed, starter } = await embedTurn(ctx, req, () => body);
  return { embedId: embed.id, start: () => starter.start(body) };
}
