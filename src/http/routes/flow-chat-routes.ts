import type { Request, Response } from 'express';
import { z } from 'zod';
import type { ChatEvent } from '../../turns/turn-events';
import {
  chatErrorStatus,
  createEmbedBodySchema,
  flowChatBodySchema,
  flowNotChat,
  newEmbedToken,
  type FlowChatBody,
} from '../../flows/flow-chat';
import { AppError, notFound } from '../../lib/errors';
import { decodeCursor, encodeCursor, pageQuerySchema, positiveIntKey } from '../../lib/pagination';
import { toChatMessageView, toChatSessionView } from '../../models/chat-views';
import { toEmbedView } from '../../models/embeds-repository';
import type { FlowRow } from '../../models/schema';
import { uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import type { AuthUser } from '../middleware/authenticate';
import { chatTurnResponse, flowChatHistoryResponse } from '../openapi/response-schemas';
import { routesWith } from '../route';
import { flowIdParam } from './flow-routes';
import type { UsagePorts } from './shared';
import type { Repositories } from '../../models';

/** What a chatflow turn answered as JSON or SSE needs: the stream door and the chat turn sources. */
export type ChatTurnPorts = Pick<ApiContext, 'streams' | 'sources'>;
/** The owner's chatflow routes' port: flows, chatflow turns, the embeds repository (plus the usage limits). */
export type FlowChatPorts = ChatTurnPorts & {
  flows: Pick<ApiContext['flows'], 'get' | 'version'>;
  flowChats: Pick<ApiContext['flowChats'], 'start'>;
} & { repos: Pick<Repositories, 'embeds' | 'chat'> } & UsagePorts &
  Pick<ApiContext, 'limits'>;
const route = routesWith<FlowChatPorts>();

/** Starts one turn of a chatflow for whoever may: the owner here, an embed's visitors there. */
export interface ChatTurnStarter {
  /** Stores the message and enqueues the turn (see FlowChats.start). */
  start(body: FlowChatBody): Promise<{ sessionId: string; messageId: string }>;
}

/**
 * One chatflow turn answered as JSON when it ends: `{sessionId, response, usage}` (a cancelled turn
 * adds `cancelled: true`); an `error` event becomes its status and code.
 */
export async function answerChatTurnAsJson(ctx: ChatTurnPorts, res: Response, starter: ChatTurnStarter, body: FlowChatBody): Promise<void> {
  const turn = await starter.start(body);
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  let final: Extract<ChatEvent, { type: 'final' | 'error' | 'cancelled' }> | undefined;
  for await (const event of ctx.sources.chatTurnEvents(turn, controller.signal, true)) {
    if (event.type === 'final' || event.type === 'error' || event.type === 'cancelled') final = event;
  }
  if (!final) return; // the client left
  if (final.type === 'error') throw new AppError(chatErrorStatus(final.code), final.code, final.message);
  if (final.type === 'cancelled')
    return void res.json({ sessionId: turn.sessionId, response: final.response, cancelled: true, usage: final.usage });
  res.json({ sessionId: turn.sessionId, response: final.response, usage: final.usage });
}

/**
 * One chatflow turn as SSE through the one stream door: `text_chunk {sessionId, text}`, then
 * `final {sessionId, response, usage}`, `error {code, message}` or `cancelled`. `streamOwner` is
 * whose stream cap it counts against.
 */
export async function streamChatTurn(
  ctx: ChatTurnPorts,
  req: Request,
  res: Response,
  starter: ChatTurnStarter,
  body: FlowChatBody,
  streamOwner: string,
): Promise<void> {
  await ctx.streams.serve(req, res, {
    userId: streamOwner,
    context: {},
    prepare: async () => {
      const turn = await starter.start(body);
      res.setHeader('X-Chat-Session-Id', turn.sessionId);
      return ctx.sources.chatTurn(turn, true);
    },
  });
}

/** Documentation shared by the owner's and the public chat routes. */
export const CHAT_JSON_RESPONSE = {
  description: 'The answer; a turn stopped by a cancel adds `cancelled: true`',
  schema: chatTurnResponse,
};
export const CHAT_SSE_RESPONSE = {
  description:
    'SSE: `text_chunk {sessionId, text}` events, then `final {sessionId, response, usage}`, `error {sessionId, code, message}` or `cancelled {sessionId, response, usage}`. ' +
    "A request with `x-vercel-ai-ui-message-stream: v1` posts the AI SDK transport's body instead and is answered in its UI message stream (docs/ai-sdk.md)",
  contentType: 'text/event-stream',
  headers: { 'X-Chat-Session-Id': 'The session id' },
};
const CHAT_TURN =
  "The flow's `systemPrompt`, the session's last `historyWindow` messages and `message` go to the flow's `model` (else the deployment's default) on a worker. " +
  'Without `sessionId` a new session (`mode: "flow"`, `flowId`) starts; `GET /chat/sessions/:id/history` reads it and `POST /chat/sessions/:id/cancel` stops a running turn. ' +
  "A `sessionId` of another flow, of an embed, or not the caller's: 404. An agentflow: 409 `not_a_chatflow`. Usage is the owner's (purpose `chatflow`); " +
  "the turn counts in the caller's per-minute chat limit.";

const OWNER_GATES =
  'A plan without flows, or a flow on a local model (`ollama`, `lmstudio`, `vllm`) on a plan without local models, is 403 `tier_forbidden`.';

const embedView = z.object({
  id: z.uuid(),
  embedId: z.uuid(),
  flowId: z.uuid(),
  allowedOrigins: z.array(z.string()),
  version: z.number().int().describe('The flow version the widget chats with: publishing another version does not change it'),
  createdAt: z.iso.datetime(),
});
const embedParams = {
  ...flowIdParam,
  embedId: { schema: uuidParam, description: 'Embed id. A malformed id answers 404, like a missing one.', resource: 'Embed' },
};
const tags = ['flows'];

/** `GET /flows/:id/chat/history`: `?limit` 1–200 (default 200) and `?cursor`. */
const flowHistoryQuerySchema = pageQuerySchema(200);
/** A flow history cursor is the `seq` of the oldest message of the page before. */
const seqKey = positiveIntKey(Number.MAX_SAFE_INTEGER);

/** A chatflow turn counts against the user's chat limit, as an assistant turn does. */
const takeChat = (ctx: FlowChatPorts, user: AuthUser) => ctx.usage.take('chatPerMinute', user);

/** The caller's chatflow: another user's flow is 404 like a missing one, an agentflow 409. */
async function ownedChatflow(ctx: FlowChatPorts, user: AuthUser, flowId: string) {
  const flow = await ctx.flows.get(user.id, flowId);
  if (flow.type !== 'chatflow') throw flowNotChat();
  return flow;
}

/** The version an embed is to be pinned to: one the flow has (else 404), its models allowed by the owner's plan. */
async function embedVersion(ctx: FlowChatPorts, user: AuthUser, flowId: string, version: number): Promise<number> {
  const found = await ctx.flows.version(user.id, flowId, version);
  await ctx.limits.requireFlowModels(user.id, found.version.definition);
  return found.version.version;
}

/** The owner's turns: the owner is the caller, so the session check's tier goes with the job. */
const ownerStarter = (ctx: FlowChatPorts, flow: Pick<FlowRow, 'id' | 'userId' | 'definition'>, owner: AuthUser): ChatTurnStarter => ({
  start: (body) => ctx.flowChats.start({ id: flow.id, userId: flow.userId, ownerTier: owner.tier, definition: flow.definition }, body),
});

/** The owner's side of a chatflow, declared once (see `../route.ts`): chat as JSON and SSE, and its public embeds. */
export const flowChatRoutes = [
  route({
    method: 'post',
    path: '/flows/:id/chat',
    operationId: 'chatWithFlow',
    tags,
    auth: 'bearer',
    summary: 'One chatflow turn, answered as JSON when it ends',
    description: `${CHAT_TURN} ${OWNER_GATES}`,
    params: flowIdParam,
    body: flowChatBodySchema,
    responses: { 200: CHAT_JSON_RESPONSE },
    errors: [403, 404, 409, 429, 503],
    handler: async (input, ctx) => {
      await ctx.limits.requireFeature(input.user.id, 'flows');
      const flow = await ownedChatflow(ctx, input.user, input.params.id);
      await ctx.limits.requireFlowModels(input.user.id, flow.definition);
      const body = input.body;
      await takeChat(ctx, input.user);
      await answerChatTurnAsJson(ctx, input.res, ownerStarter(ctx, flow, input.user), body);
    },
  }),

  route({
    method: 'post',
    path: '/flows/:id/chat/stream',
    operationId: 'chatWithFlowStream',
    tags,
    auth: 'bearer',
    summary: 'One chatflow turn, streamed as server-sent events',
    description: `${CHAT_TURN} ${OWNER_GATES}`,
    params: flowIdParam,
    body: flowChatBodySchema,
    responses: { 200: CHAT_SSE_RESPONSE },
    errors: [403, 404, 409, 429, 503],
    handler: async (input, ctx) => {
      await ctx.limits.requireFeature(input.user.id, 'flows');
      const flow = await ownedChatflow(ctx, input.user, input.params.id);
      await ctx.limits.requireFlowModels(input.user.id, flow.definition);
      const body = input.body;
      // Counted before the stream opens, so a refusal is a plain 429 with Retry-After.
      await takeChat(ctx, input.user);
      await streamChatTurn(ctx, input.req, input.res, ownerStarter(ctx, flow, input.user), body, flow.userId);
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/chat/history',
    operationId: 'getFlowChatHistory',
    tags,
    auth: 'bearer',
    summary: "The caller's chat history with a chatflow: the messages of all its sessions, in pages from the newest back",
    description:
      "Every session of the caller's with the flow (their own chats, and their embeds' visitors', which the owner may read) in one history: " +
      "each message names its `sessionId`, and `sessions` holds those sessions. `?limit` 1–200 (default 200), `?cursor` the previous page's " +
      "`nextCursor` (null when the page reaches the first message); each page reads oldest → newest. Another user's flow is 404, an agentflow 409 " +
      '`not_a_chatflow`; a foreign cursor is 400 `invalid_cursor`.',
    params: flowIdParam,
    query: flowHistoryQuerySchema,
    responses: { 200: { description: 'A page of the messages, oldest → newest, and their sessions', schema: flowChatHistoryResponse } },
    errors: [400, 404, 409],
    handler: async ({ user, params, query }, ctx) => {
      const flow = await ownedChatflow(ctx, user, params.id);
      const beforeSeq = query.cursor ? decodeCursor(query.cursor, seqKey) : undefined;
      const rows = await ctx.repos.chat.flowHistoryPage(user.id, flow.id, { limit: query.limit + 1, beforeSeq });
      // Fetched newest first; the page is answered in reading order, its cursor names its oldest message.
      const page = rows.slice(0, query.limit).reverse();
      const sessions = await ctx.repos.chat.findManyOwned(user.id, [...new Set(page.map((row) => row.sessionId))]);
      sessions.sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime());
      return {
        flowId: flow.id,
        sessions: sessions.map(toChatSessionView),
        messages: page.map((row) => ({ ...toChatMessageView(row), sessionId: row.sessionId })),
        nextCursor: rows.length > query.limit ? encodeCursor([page[0].seq]) : null,
      };
    },
  }),

  route({
    method: 'post',
    path: '/flows/:id/embeds',
    operationId: 'createFlowEmbed',
    tags,
    auth: 'bearer',
    summary: 'A public chat widget for a chatflow, usable from the listed origins',
    description:
      'Answers the `embedToken` this once (only its hash is stored). Put it on a page of an allowed origin with ' +
      '`<script src="<server>/embed.js" data-embed-token="<embedToken>"></script>`. Origins are `scheme://host[:port]`, 1 to 20 of them. ' +
      'The widget chats with the flow version given as `version` (a version the flow lacks is 404), else the version published now; ' +
      'publishing another version later does not change it (change it with `PATCH`).',
    params: flowIdParam,
    body: createEmbedBodySchema,
    bodyExample: { allowedOrigins: ['https://shop.example.com'] },
    responses: {
      201: {
        description: '`{embedId, embedToken, embed}`',
        schema: z.object({ embedId: z.uuid(), embedToken: z.string(), embed: embedView }),
      },
    },
    errors: [404, 409],
    handler: async (input, ctx) => {
      const flow = await ownedChatflow(ctx, input.user, input.params.id);
      const flowVersion = await embedVersion(ctx, input.user, flow.id, input.body.version ?? flow.publishedVersion);
      const { token, hash } = newEmbedToken();
      const row = await ctx.repos.embeds.create({
        flowId: flow.id,
        userId: flow.userId,
        tokenHash: hash,
        allowedOrigins: [...new Set(input.body.allowedOrigins)],
        flowVersion,
      });
      // The token is shown this once; only its hash is stored.
      return { embedId: row.id, embedToken: token, embed: toEmbedView(row) };
    },
  }),

  route({
    method: 'get',
    path: '/flows/:id/embeds',
    operationId: 'listFlowEmbeds',
    tags,
    auth: 'bearer',
    summary: "The flow's embeds, newest first (tokens are never shown again)",
    params: flowIdParam,
    responses: { 200: { description: '`{embeds}`', schema: z.object({ embeds: z.array(embedView) }) } },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const flow = await ctx.flows.get(user.id, params.id);
      return { embeds: (await ctx.repos.embeds.listForFlow(flow.id)).map(toEmbedView) };
    },
  }),

  route({
    method: 'patch',
    path: '/flows/:id/embeds/:embedId',
    operationId: 'updateFlowEmbed',
    tags,
    auth: 'bearer',
    summary: "Replace an embed's allowed origins, and pin it to another flow version (its token stays the same)",
    description:
      'The next public request is checked against the new origins. Origins as for creating an embed: 1 to 20, `scheme://host[:port]`. ' +
      'With `version`, the next turn answers with that flow version (a version the flow lacks is 404); without, the embed keeps its version.',
    params: embedParams,
    body: createEmbedBodySchema,
    bodyExample: { allowedOrigins: ['https://shop.example.com', 'https://www.shop.example.com'] },
    responses: { 200: { description: '`{embed}`', schema: z.object({ embed: embedView }) } },
    errors: [404, 409],
    handler: async ({ user, params, body }, ctx) => {
      const flow = await ownedChatflow(ctx, user, params.id);
      const flowVersion = body.version === undefined ? undefined : await embedVersion(ctx, user, flow.id, body.version);
      const row = await ctx.repos.embeds.setOrigins(flow.id, params.embedId, [...new Set(body.allowedOrigins)], flowVersion);
      if (!row) throw notFound('Embed');
      return { embed: toEmbedView(row) };
    },
  }),

  route({
    method: 'delete',
    path: '/flows/:id/embeds/:embedId',
    operationId: 'deleteFlowEmbed',
    tags,
    auth: 'bearer',
    summary: 'Revoke an embed: its token answers 404 from the next request on',
    params: embedParams,
    responses: { 204: 'Revoked' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const flow = await ctx.flows.get(user.id, params.id);
      if (!(await ctx.repos.embeds.delete(flow.id, params.embedId))) throw notFound('Embed');
    },
  }),
];
