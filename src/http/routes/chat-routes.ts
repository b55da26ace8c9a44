import { z } from 'zod';
import type { ChatEvent } from '../../turns/turn-events';
import { multitaskSchema } from '../../assistant/chat-lane';
import { chatBodySchema } from '../../assistant/chat-service';
import { AppError, forbidden, notFound } from '../../lib/errors';
import { decodeCursor, encodeCursor, pageQuerySchema, positiveIntKey, timeIdKey } from '../../lib/pagination';
import { toChatMessageView, toChatSessionView } from '../../models/chat-views';
import type { ApiContext } from '../context';
import type { AuthUser } from '../middleware/authenticate';
import {
  answerRatingResponse,
  chatCancelResponse,
  chatHistoryResponse,
  chatSessionListResponse,
  chatSessionResponse,
  chatTurnResponse,
  taskLaneView,
} from '../openapi/response-schemas';
import { routesWith } from '../route';
import { answerParams, sessionIdParam } from './params';
import type { UsagePorts } from './shared';
import type { Repositories } from '../../models';

/** The chat routes' port: the chat service and its cancels, the chat repository, the stream door and sources (plus the usage limits). */
export type ChatPorts = Pick<ApiContext, 'streams' | 'sources'> & {
  chat: Pick<ApiContext['chat'], 'start'>;
  chatTurnLife: Pick<ApiContext['chatTurnLife'], 'cancel'>;
} & { repos: Pick<Repositories, 'chat'> } & UsagePorts &
  Pick<ApiContext, 'limits'>;
const route = routesWith<ChatPorts>();

/** `GET /chat/sessions`: `?limit` (1–200, default 50) and the opaque `?cursor` of the previous page. */
export const chatSessionsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  /** `assistant`: the assistant's own conversations only; `flow`: chatflow sessions only; absent: both. */
  kind: z.enum(['assistant', 'flow']).optional(),
});

/**
 * `GET /chat/sessions/:id/history`: `?limit` 1–200 (default 200, so a conversation of up to 200
 * messages still arrives whole) and `?cursor`. Pages walk back from the newest message; each page
 * reads oldest → newest.
 */
export const historyPageQuerySchema = pageQuerySchema(200);
/** A history cursor is the `seq` of the oldest message of the page before. */
const seqKey = positiveIntKey(Number.MAX_SAFE_INTEGER);

/** The cursor names the last session of a page by (updatedAt, id). */
const sessionCursor = {
  encode: (row: { updatedAt: Date; id: string }) =>
    Buffer.from(JSON.stringify([row.updatedAt.toISOString(), row.id])).toString('base64url'),
  decode(cursor: string): { updatedAt: Date; id: string } {
    const { at, id } = decodeCursor(cursor, timeIdKey);
    return { updatedAt: at, id };
  },
};

const tags = ['assistant'];

const startTurn = (ctx: ChatPorts, user: AuthUser, body: z.output<typeof chatBodySchema>) =>
  ctx.chat.start({
    userId: user.id,
    authorName: user.name,
    tier: user.tier,
    message: body.message,
    sessionId: body.sessionId,
    deviceId: body.deviceId,
    tools: body.tools,
    model: body.config,
    context: body.context,
    agent: body.agent,
    multitask: body.multitask,
    files: body.files,
  });

/** The status of a turn that ended in `error`: 503 model unreachable or its key refused, 429 budget spent or a plan's hourly limit reached mid-turn, else 502. */
const turnErrorStatus = (code: string) =>
  code === 'llm_unavailable' || code === 'llm_auth_failed' ? 503 : code === 'budget_exceeded' || code === 'rate_limited' ? 429 : 502;

/** `PUT /chat/sessions/:id/task-lane`: the whole lane, or null to clear it. */
export const taskLaneBodySchema = z.strictObject({
  lane: z
    .strictObject({
      collapsed: z.boolean(),
      items: z
        .array(
          z.strictObject({
            id: z.string().min(1).max(64),
            kind: z.enum(['question', 'action']),
            text: z.string().trim().min(1).max(1_000),
            answer: z.string().max(4_000).optional(),
            done: z.boolean().optional(),
          }),
        )
        .max(50)
        .refine((items) => new Set(items.map((item) => item.id)).size === items.length, 'item ids must be unique'),
    })
    .nullable(),
});
/** `PUT /chat/sessions/:id/messages/:messageId/rating`: thumbs up or down, an optional comment. */
export const answerRatingBodySchema = z.strictObject({
  rating: z.enum(['up', 'down']),
  comment: z.string().trim().max(2_000).optional(),
});
/** `PUT /chat/sessions/:id/multitask`: what a message sent while a turn of the session runs does. */
export const multitaskBodySchema = z.strictObject({ multitask: multitaskSchema });
const multitaskResponse = z.object({ sessionId: z.uuid(), multitask: multitaskSchema });
const taskLaneResponse = z.object({ sessionId: z.uuid(), pendingTaskLane: taskLaneView.nullable() });

/** The caller's session; someone else's answers exactly like a missing one. */
async function ownedSession(ctx: ChatPorts, userId: string, id: string) {
  const session = await ctx.repos.chat.findOwned(userId, id);
  if (!session) throw notFound('Chat session');
  return session;
}

/** A session the caller may read: their own, or a room thread of a canvas they are a member of; anything else is 404. */
async function readableSession(ctx: ChatPorts, userId: string, id: string) {
  const access = await ctx.repos.chat.findAccessible(userId, id);
  if (!access) throw notFound('Chat session');
  return access;
}

/** Assistant chat: one turn as JSON or as SSE, a session's history, deleting a session. */
export const chatRoutes = [
  route({
    method: 'post',
    path: '/chat',
    operationId: 'chat',
    tags,
    auth: 'bearer',
    summary: 'One assistant turn, answered as JSON when it ends',
    description:
      "Tools run on the device (`deviceId`, else the caller's online device); dangerous ones wait for an approval. " +
      '`tools: "none"` (the default when no device is online) answers as a plain assistant without device tools; ' +
      '`tools: "device"` with no device online is 409 `device_offline`. `config: {provider, model}` picks a configured model (else 400 `unknown_model`; a local provider on a plan without local models is 403 `tier_forbidden`). ' +
      '`context` (a JSON object of at most 8,000 characters) is kept on the session and given to the model on every turn of it; a later `context` replaces it, `{}` clears it. ' +
      '`agent` (`orchestrator`, `ask`, `coder`, `debug`, `architect`) makes it a coding turn on the project folder the device serves (docs/coding-agents.md). ' +
      "`files` (at most 4, each the AI SDK's `file` part with a base64 `data:` URL, together at most `KNOWLEDGE_MAX_FILE_BYTES`) go into the session's own knowledge base; the turn waits for them to be ingested (up to `KNOWLEDGE_CHAT_WAIT_MS`) and answers from them with citations. " +
      "A file over the plan's size cap is 413 `file_too_large`, an empty or unsupported one 415 `unsupported_file`: nothing is written.",
    body: chatBodySchema,
    responses: {
      200: {
        description: 'The answer; a turn stopped by a cancel answers its partial response with `cancelled: true`',
        schema: chatTurnResponse,
      },
    },
    errors: [403, 404, 409, 413, 429, 503],
    handler: async ({ res, user, body }, ctx) => {
      await ctx.limits.requireModelChoice(user.id, body.config);
      await ctx.usage.take('chatPerMinute', user);
      if (body.agent) await ctx.usage.take('codingTurnsPerHour', user);
      const turn = await startTurn(ctx, user, body);
      const controller = new AbortController();
      // 'close' on the response: the client went away before the answer (a finished request also closes).
      res.on('close', () => controller.abort());
      let final: Extract<ChatEvent, { type: 'final' | 'error' | 'cancelled' }> | undefined;
      for await (const event of ctx.sources.chatTurnEvents(turn, controller.signal, true)) {
        if (event.type === 'final' || event.type === 'error' || event.type === 'cancelled') final = event;
      }
      if (!final) return undefined; // client gone
      if (final.type === 'error') throw new AppError(turnErrorStatus(final.code), final.code, final.message);
      // Stopped by a cancel: what the assistant had said so far.
      if (final.type === 'cancelled') return { sessionId: turn.sessionId, response: final.response, cancelled: true, usage: final.usage };
      return { sessionId: turn.sessionId, response: final.response, usage: final.usage };
    },
  }),

  route({
    method: 'post',
    path: '/chat/stream',
    operationId: 'chatStream',
    tags,
    auth: 'bearer',
    summary: 'One assistant turn, streamed as server-sent events',
    body: chatBodySchema,
    responses: {
      200: {
        description:
          "SSE: `text_chunk {sessionId, text}` events; when the assistant calls a tool that needs the user's approval, `approval_requested " +
          '{approvalId, sessionId, toolName, parameters, reason, expiresAt}` (the turn waits: decide with `PUT /hitl/requests/{id}/approve` or `/reject`, ' +
          'or from any other surface) and then `approval_resolved {approvalId, sessionId, status: approved|rejected|timeout, decidedBy: user id, null for a timeout}`; ' +
          'then `final {sessionId, response, usage}`, `error {sessionId, code, message}` or `cancelled {sessionId, response, usage}` (stopped by a cancel). ' +
          "A request with `x-vercel-ai-ui-message-stream: v1` posts the AI SDK transport's body instead and is answered in its UI message stream (docs/ai-sdk.md)",
        contentType: 'text/event-stream',
        headers: { 'X-Chat-Session-Id': 'The session id' },
      },
    },
    errors: [403, 404, 409, 413, 429, 503],
    handler: async ({ req, res, user, body }, ctx) => {
      await ctx.limits.requireModelChoice(user.id, body.config);
      // Counted before the stream opens, so a refusal is a plain 429 with Retry-After.
      await ctx.usage.take('chatPerMinute', user);
      if (body.agent) await ctx.usage.take('codingTurnsPerHour', user);
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: {},
        prepare: async () => {
          const turn = await startTurn(ctx, user, body);
          res.setHeader('X-Chat-Session-Id', turn.sessionId);
          return ctx.sources.chatTurn(turn, true);
        },
      });
    },
  }),

  route({
    method: 'get',
    path: '/chat/sessions',
    operationId: 'listChatSessions',
    tags,
    auth: 'bearer',
    summary: "The caller's chat sessions, most recently active first",
    description:
      "`?kind=assistant` lists only the assistant's own conversations (no chatflow or embed sessions), `?kind=flow` only chatflow sessions; " +
      "without it, both. `?limit` 1–200 (default 50), `?cursor` the previous page's `nextCursor`.",
    query: chatSessionsQuerySchema,
    responses: { 200: { description: 'The sessions, most recently active first', schema: chatSessionListResponse } },
    errors: [400],
    handler: async ({ user, query }, ctx) => {
      const rows = await ctx.repos.chat.listOwned(user.id, {
        limit: query.limit + 1,
        after: query.cursor ? sessionCursor.decode(query.cursor) : undefined,
        kind: query.kind,
      });
      const page = rows.slice(0, query.limit);
      return { sessions: page.map(toChatSessionView), nextCursor: rows.length > query.limit ? sessionCursor.encode(page.at(-1)!) : null };
    },
  }),

  route({
    method: 'get',
    path: '/chat/sessions/:id',
    operationId: 'getChatSession',
    tags,
    auth: 'bearer',
    summary: 'One session (its owner only; a room thread, any member of its canvas)',
    params: sessionIdParam,
    responses: { 200: { description: 'The session', schema: chatSessionResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => ({ session: toChatSessionView((await readableSession(ctx, user.id, params.id)).session) }),
  }),

  route({
    method: 'get',
    path: '/chat/sessions/:id/history',
    operationId: 'getChatHistory',
    tags,
    auth: 'bearer',
    summary: "A session's messages (its owner only; a room thread's, any member of its canvas), in pages from the newest back",
    description:
      '`?limit` 1–200 (default 200). The first page holds the latest messages; each page reads oldest → newest. `nextCursor` (null when the page ' +
      'reaches the first message) goes back as `?cursor` for the messages before the page. A foreign cursor is 400 `invalid_cursor`.',
    params: sessionIdParam,
    query: historyPageQuerySchema,
    responses: {
      200: { description: 'The session and a page of its messages, oldest → newest within the page', schema: chatHistoryResponse },
    },
    errors: [400, 404],
    // The query is read (400) before the session is looked up (404), as it always was.
    handler: async ({ user, params, query }, ctx) => {
      const { session } = await readableSession(ctx, user.id, params.id);
      const beforeSeq = query.cursor ? decodeCursor(query.cursor, seqKey) : undefined;
      const rows = await ctx.repos.chat.historyPage(session.id, { limit: query.limit + 1, beforeSeq });
      // Fetched newest first; the page is answered in reading order, its cursor names its oldest message.
      const page = rows.slice(0, query.limit).reverse();
      const nextCursor = rows.length > query.limit ? encodeCursor([page[0].seq]) : null;
      return { session: toChatSessionView(session), messages: page.map(toChatMessageView), nextCursor };
    },
  }),

  // Cancel: stops the session's running turn, from any node; 202 while one runs, else 409 not_running.
  route({
    method: 'post',
    path: '/chat/sessions/:id/cancel',
    operationId: 'cancelChatTurn',
    tags,
    auth: 'bearer',
    summary: "Stop the session's running turn (its owner only), from any API node",
    description:
      'The model request is aborted, device tool calls in flight are abandoned, pending approvals of the turn become `rejected` with ' +
      '`decisionReason: "cancelled"`, and the turn ends with `cancelled {sessionId}` on its stream and the device; the partial answer is kept in the ' +
      'history with `status: "cancelled"`. A turn still queued never starts. 409 `not_running` when no turn runs.',
    params: sessionIdParam,
    responses: { 202: { description: 'The stop is under way', schema: chatCancelResponse } },
    errors: [404, 409],
    handler: ({ user, params }, ctx) => ctx.chatTurnLife.cancel(user.id, params.id),
  }),

  route({
    method: 'delete',
    path: '/chat/sessions/:id',
    operationId: 'deleteChatSession',
    tags,
    auth: 'bearer',
    summary: 'Delete a session and its history',
    params: sessionIdParam,
    responses: { 204: 'Deleted' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const session = await ownedSession(ctx, user.id, params.id);
      await ctx.repos.chat.deleteOwned(session.userId, session.id);
    },
  }),
  route({
    method: 'put',
    path: '/chat/sessions/:id/task-lane',
    operationId: 'setChatSessionTaskLane',
    tags,
    auth: 'bearer',
    summary: "Keep the session's task lane (its questions, actions, answers and whether it is collapsed)",
    description:
      'Replaces the lane kept on the session, so it is the same after navigating away and back; `pendingTaskLane` of the session ' +
      'answers it. `null` clears it. At most 50 items; ids are unique.',
    params: sessionIdParam,
    body: taskLaneBodySchema,
    responses: { 200: { description: 'The lane as kept', schema: taskLaneResponse } },
    errors: [400, 404],
    handler: async ({ user, params, body }, ctx) => {
      const lane = body.lane === null ? null : { collapsed: body.lane.collapsed, items: body.lane.items };
      if (!(await ctx.repos.chat.setTaskLane(user.id, params.id, lane))) throw notFound('Chat session');
      return { sessionId: params.id, pendingTaskLane: lane };
    },
  }),

  route({
    method: 'put',
    path: '/chat/sessions/:id/multitask',
    operationId: 'setChatSessionMultitask',
    tags,
    auth: 'bearer',
    summary: 'Choose what a message sent while a turn of the session runs does',
    description:
      'A session runs one turn at a time. `enqueue` (the default): the message runs after the running turn and reads its answer; ' +
      '`reject`: it is refused with 409 `turn_in_progress` and nothing is written; `interrupt`: the running turn is cancelled and keeps ' +
      'what it said so far, then the message runs; `rollback`: the running turn is cancelled and its messages are removed, then the ' +
      "message runs. A chat request may name its own `multitask`, which wins over the session's.",
    params: sessionIdParam,
    body: multitaskBodySchema,
    responses: { 200: { description: 'The strategy as kept', schema: multitaskResponse } },
    errors: [400, 403, 404],
    handler: async ({ user, params, body }, ctx) => {
      // A room thread's strategy is set by the canvas's editors and owners.
      const access = await readableSession(ctx, user.id, params.id);
      if (access.role === 'viewer')
        throw forbidden("Viewers of a canvas read its threads; setting a thread's strategy needs the editor role");
      if (!(await ctx.repos.chat.setMultitask(access.session.userId, params.id, body.multitask))) throw notFound('Chat session');
      return { sessionId: params.id, multitask: body.multitask };
    },
  }),

  route({
    method: 'put',
    path: '/chat/sessions/:id/messages/:messageId/rating',
    operationId: 'rateChatAnswer',
    tags,
    auth: 'bearer',
    summary: "Rate an assistant answer thumbs up or down (the session's owner only)",
    description:
      'One rating per answer: rating again replaces the rating and its comment (an absent or blank comment clears it). Only an ' +
      "assistant answer can be rated: a user or tool message, another user's session or a missing one answer 404. The rating comes " +
      'back on the message in the session history and in the account export.',
    params: answerParams,
    body: answerRatingBodySchema,
    responses: { 200: { description: 'The rating as kept', schema: answerRatingResponse } },
    errors: [400, 404],
    handler: async ({ user, params, body }, ctx) => {
      const rated = await ctx.repos.chat.rateAnswer(user.id, params.id, params.messageId, {
        rating: body.rating,
        comment: body.comment ? body.comment : null,
      });
      if (!rated) throw notFound('Answer');
      return { sessionId: params.id, messageId: params.messageId, rating: toChatMessageView(rated).rating! };
    },
  }),
];
