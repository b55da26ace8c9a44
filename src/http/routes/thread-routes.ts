import { z } from 'zod';
import { multitaskSchema } from '../../assistant/chat-lane';
import { MAX_CHAT_MESSAGE_CHARS } from '../../assistant/chat-service';
import { MAX_THREAD_TITLE_CHARS } from '../../assistant/room-threads';
import { forbidden } from '../../lib/errors';
import { decodeCursor, timeIdKey } from '../../lib/pagination';
import { toChatSessionView } from '../../models/chat-views';
import type { Repositories } from '../../models';
import type { ApiContext } from '../context';
import {
  chatSessionResponse,
  threadCreatedResponse,
  threadListResponse,
  threadPostResponse,
  threadResponse,
  threadLoanListResponse,
  threadLoanResponse,
} from '../openapi/response-schemas';
import { routesWith } from '../route';
import { lastEventIdQuery, lastEventSeq } from '../sse';
import { standingOf } from './canvas-feed-routes';
import { canvasIdParam } from './params';
import { uuidParam } from '../../schemas/api';
import { deviceIdSchema } from '../../schemas/device-protocol';
import type { UsagePorts } from './shared';

/** The room thread routes' port: the threads, the chat service (posting), the stream door and sources, the token settings (a feed's standing). */
export type ThreadPorts = Pick<ApiContext, 'threads' | 'streams' | 'sources' | 'tokens' | 'limits'> & {
  chat: Pick<ApiContext['chat'], 'start'>;
  repos: Pick<Repositories, 'canvases' | 'chat'>;
} & UsagePorts;
const route = routesWith<ThreadPorts>();

const tags = ['threads'];
const threadParams = {
  ...canvasIdParam,
  threadId: {
    schema: uuidParam,
    description: 'Thread id (a chat session bound to the canvas). A malformed id answers 404, like a missing one.',
    resource: 'Thread',
  },
};

/** `POST /canvases/:id/threads`, and `POST /chat/sessions` without a message. */
export const threadBodySchema = z.strictObject({
  title: z.string().trim().min(1).max(MAX_THREAD_TITLE_CHARS).optional(),
  multitask: multitaskSchema.optional(),
});
/** `POST /chat/sessions`: a new session, bound to a canvas (a room thread) when `canvasId` is given. */
export const createSessionBodySchema = threadBodySchema.extend({ canvasId: z.uuid().optional() });
/** `POST /canvases/:id/threads/:threadId/messages`. */
export const threadMessageBodySchema = z.strictObject({
  message: z.string().trim().min(1).max(MAX_CHAT_MESSAGE_CHARS),
  multitask: multitaskSchema.optional(),
  /** A device lent to the thread: the turn may ask to run its tools there (its owner approves another member's calls). */
  deviceId: deviceIdSchema.optional(),
  config: z.strictObject({ provider: z.string().min(1).max(100), model: z.string().min(1).max(200) }).optional(),
});
/** `PUT /canvases/:id/threads/:threadId/approvals`: who decides the thread's approvals. */
export const approvalPolicyBodySchema = z.strictObject({
  policy: z.enum(['requester', 'any_editor', 'canvas_owner', 'quorum']),
  quorum: z.number().int().min(1).max(1_000).optional(),
});
const loanParams = {
  ...threadParams,
  deviceId: { schema: deviceIdSchema, description: 'The device id (as the device says it in its hello)', resource: 'Device loan' },
};
const loanView = (loan: { deviceId: string; ownerId: string; lentAt: Date }) => ({
  deviceId: loan.deviceId,
  ownerId: loan.ownerId,
  lentAt: loan.lentAt.toISOString(),
});

const threadsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

const threadCursor = {
  encode: (row: { updatedAt: Date; id: string }) =>
    Buffer.from(JSON.stringify([row.updatedAt.toISOString(), row.id])).toString('base64url'),
  decode(cursor: string): { updatedAt: Date; id: string } {
    const { at, id } = decodeCursor(cursor, timeIdKey);
    return { updatedAt: at, id };
  },
};

const FEED =
  "Server-sent events of one room thread, in order, as the canvas room's `thread_event`s of this thread: `id:` the room seq, `event: thread_event`, `data:` `{canvasId, threadId, turnId, event, seq}`. It opens with `ready {canvasId, threadId, seq}`. Without `Last-Event-ID` it starts at the first turn of the thread that has not ended (a late joiner sees the running turn from its start), else from now; with one, after it. `resync {lastSeq}` when events after it are no longer kept (read the history, then read on); `closed {reason}` ends it when the credential expired or was revoked or the caller is no longer a member.";

/**
 * Room threads: a canvas's chat sessions. Any member reads them (404 for anyone else), editors and
 * owners start and post to them (403 for a viewer, nothing written); a message's turn is its
 * sender's (their budget, their limits) and runs through the thread's lane.
 */
export const threadRoutes = [
  route({
    method: 'post',
    path: '/chat/sessions',
    operationId: 'createChatSession',
    tags: ['assistant'],
    auth: 'bearer',
    summary: 'Start an empty chat session; with `canvasId`, a room thread of that canvas (editor)',
    description:
      "With `canvasId` the session is the canvas's room thread: every member reads it and follows its turns in the room, editors and owners post to it " +
      '(`POST /chat` with its `sessionId`, or `POST /canvases/{id}/threads/{threadId}/messages`). A canvas you are not a member of is 404, a viewer 403.',
    body: createSessionBodySchema,
    responses: { 201: { description: 'The session', schema: chatSessionResponse } },
    errors: [400, 403, 404],
    handler: async ({ user, body, res }, ctx) => {
      const { canvasId, ...fields } = body;
      const session = canvasId
        ? await ctx.threads.create(user.id, canvasId, fields)
        : await ctx.repos.chat.createSession({
            userId: user.id,
            deviceId: null,
            title: fields.title ?? 'New chat',
            mode: 'none',
            multitask: fields.multitask ?? null,
          });
      res.status(201);
      return { session: toChatSessionView(session) };
    },
  }),

  route({
    method: 'post',
    path: '/canvases/:id/threads',
    operationId: 'createThread',
    tags,
    auth: 'bearer',
    summary: "Start a room thread of the canvas (editor): the assistant in the canvas's room, for every member",
    description: 'The room hears it as `thread_event {type: thread_created}`, so every member lists it before anyone posts.',
    params: canvasIdParam,
    body: threadBodySchema,
    responses: { 201: { description: 'The thread (a chat session bound to the canvas)', schema: threadCreatedResponse } },
    errors: [400, 403, 404],
    handler: async ({ user, params, body, res }, ctx) => {
      const thread = await ctx.threads.create(user.id, params.id, body);
      res.status(201);
      return { thread: toChatSessionView(thread) };
    },
  }),

  route({
    method: 'get',
    path: '/canvases/:id/threads',
    operationId: 'listThreads',
    tags,
    auth: 'bearer',
    summary: "The canvas's room threads (any member), most recently active first",
    params: canvasIdParam,
    query: threadsQuerySchema,
    responses: { 200: { description: 'The threads', schema: threadListResponse } },
    errors: [400, 404],
    handler: async ({ user, params, query }, ctx) => {
      const rows = await ctx.threads.list(user.id, params.id, {
        limit: query.limit + 1,
        after: query.cursor ? threadCursor.decode(query.cursor) : undefined,
      });
      const page = rows.slice(0, query.limit);
      return { threads: page.map(toChatSessionView), nextCursor: rows.length > query.limit ? threadCursor.encode(page.at(-1)!) : null };
    },
  }),

  route({
    method: 'get',
    path: '/canvases/:id/threads/:threadId',
    operationId: 'getThread',
    tags,
    auth: 'bearer',
    summary: 'A room thread (any member), your role, and its turns that have not ended',
    description:
      'Its messages are `GET /chat/sessions/{threadId}/history` (each user message with `authorId` and `authorName`). `openTurns` are the turns ' +
      "queued or running now; `canvas:sync {afterSeq: roomSeq - 1}` (or the thread's SSE feed) replays each from its start.",
    params: threadParams,
    responses: { 200: { description: 'The thread', schema: threadResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const { thread, role } = await ctx.threads.find(user.id, params.id, params.threadId);
      return { thread: toChatSessionView(thread), role, openTurns: await ctx.threads.openTurns(thread.id) };
    },
  }),

  route({
    method: 'post',
    path: '/canvases/:id/threads/:threadId/messages',
    operationId: 'postThreadMessage',
    tags,
    auth: 'bearer',
    summary: "Post a message to a room thread (editor): its turn runs in the thread's lane, billed to you, live in the room",
    description:
      "Answered 202 once the message is stored and its turn queued; the answer reaches every member as the room's `thread_event`s. " +
      "`multitask` (else the thread's): `enqueue` runs it after the turns before it, `reject` refuses it with 409 `turn_in_progress` while one runs, " +
      '`interrupt` stops the running turn (keeping its words). `deviceId` names a device lent to the thread (409 `device_not_lent` otherwise, ' +
      "`device_offline` when it is not connected): the turn may run its tools there, each call of a turn not its owner's asked of its owner. " +
      'A viewer is 403, a non-member 404 (nothing written); your budget spent is 429 ' +
      '`budget_exceeded`, past your chat limit or the flood limits (per member of the thread, per thread) 429 `rate_limited`.',
    params: threadParams,
    body: threadMessageBodySchema,
    responses: { 202: { description: 'Stored and queued', schema: threadPostResponse } },
    errors: [400, 403, 404, 409, 429, 503],
    handler: async ({ user, params, body, res }, ctx) => {
      // The thread is read (404) before any limit counts a message that could not be posted.
      const { thread, role } = await ctx.threads.find(user.id, params.id, params.threadId);
      if (role === 'viewer') throw forbidden('Viewers of a canvas read its threads; posting needs the editor role');
      await ctx.limits.requireModelChoice(user.id, body.config);
      await ctx.usage.take('chatPerMinute', user);
      const turn = await ctx.chat.start({
        userId: user.id,
        tier: user.tier,
        authorName: user.name,
        message: body.message,
        sessionId: thread.id,
        multitask: body.multitask,
        model: body.config,
        deviceId: body.deviceId,
      });
      res.status(202);
      return { threadId: thread.id, messageId: turn.messageId };
    },
  }),

  route({
    method: 'put',
    path: '/canvases/:id/threads/:threadId/approvals',
    operationId: 'setThreadApprovalPolicy',
    tags,
    auth: 'bearer',
    summary: "Set who decides the approvals of a room thread's turns (editor)",
    description:
      '`requester` (the default: the member whose message asked), `any_editor` (any editor or owner), `canvas_owner`, or `quorum` with ' +
      '`quorum` N (1 to the number of editors and owners): N editors approve, the first reject of one of them rejects, each member votes once. ' +
      'The first decision that satisfies the policy wins, once; a request pending now follows the new policy. A call on a device another ' +
      "member lent to the thread is always its owner's to decide. Viewers and the thread's members hear it as `thread_event {type: approval_policy}`.",
    params: threadParams,
    body: approvalPolicyBodySchema,
    responses: { 200: { description: 'The thread', schema: threadCreatedResponse } },
    errors: [400, 403, 404],
    handler: async ({ user, params, body }, ctx) => {
      const thread = await ctx.threads.setApprovalPolicy(user.id, params.id, params.threadId, {
        policy: body.policy,
        quorum: body.quorum ?? null,
      });
      return { thread: toChatSessionView(thread) };
    },
  }),

  route({
    method: 'get',
    path: '/canvases/:id/threads/:threadId/devices',
    operationId: 'listThreadDevices',
    tags,
    auth: 'bearer',
    summary: 'The devices lent to a room thread (any member)',
    params: threadParams,
    responses: { 200: { description: 'The loans, oldest first', schema: threadLoanListResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => ({
      devices: (await ctx.threads.loans(user.id, params.id, params.threadId)).map(loanView),
    }),
  }),

  route({
    method: 'put',
    path: '/canvases/:id/threads/:threadId/devices/:deviceId',
    operationId: 'lendThreadDevice',
    tags,
    auth: 'bearer',
    summary: 'Lend one of your devices to a room thread (editor): its turns may ask to run tools on it, and you are asked',
    description:
      "A message to the thread may then name it (`deviceId`). A turn of another member that wants to run a tool on it waits for your approval, whatever the thread's policy; " +
      'your own turns use it as your private chat does. 409 `device_id_taken` when another member lent a device of that id. Heard as `thread_event {type: device_lent}`.',
    params: loanParams,
    responses: { 200: { description: 'The loan', schema: threadLoanResponse } },
    errors: [403, 404, 409],
    handler: async ({ user, params }, ctx) => ({
      device: loanView(await ctx.threads.lend(user.id, params.id, params.threadId, params.deviceId)),
    }),
  }),

  route({
    method: 'delete',
    path: '/canvases/:id/threads/:threadId/devices/:deviceId',
    operationId: 'withdrawThreadDevice',
    tags,
    auth: 'bearer',
    summary: 'Take your device back from a room thread: no turn of the thread runs a tool on it any more',
    params: loanParams,
    responses: { 204: 'Withdrawn' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      await ctx.threads.withdraw(user.id, params.id, params.threadId, params.deviceId);
    },
  }),

  route({
    method: 'get',
    path: '/canvases/:id/threads/:threadId/events',
    operationId: 'followThreadEvents',
    tags,
    auth: 'bearer',
    summary: "Follow a room thread's events over SSE (any member; resumes after `Last-Event-ID`)",
    params: threadParams,
    headers: { 'Last-Event-ID': { description: 'Resume after this event id (a room seq)' } },
    query: lastEventIdQuery,
    responses: { 200: { description: FEED, contentType: 'text/event-stream' } },
    errors: [404, 429, 503],
    handler: async (input, ctx) => {
      const { req, res, user, params, headers } = input;
      const { thread } = await ctx.threads.find(user.id, params.id, params.threadId);
      const lastEventId = headers['Last-Event-ID'] ?? input.query.lastEventId;
      // A late joiner: from the first turn not ended yet, so the running turn is seen from its start.
      const firstOpen =
        lastEventId === undefined ? (await ctx.threads.openTurns(thread.id)).find((turn) => turn.roomSeq)?.roomSeq : undefined;
      const afterSeq = lastEventId !== undefined ? lastEventSeq(lastEventId) : firstOpen ? firstOpen - 1 : undefined;
      const standing = standingOf(ctx, req, user, params.id);
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { canvasId: params.id },
        prepare: async () => ctx.sources.canvasFeed(params.id, afterSeq, standing, thread.id),
      });
    },
  }),
];
