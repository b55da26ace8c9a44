import { createHash } from 'node:crypto';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { chatBodySchema } from '../../assistant/chat-service';
import { flowChatBodySchema, flowNotChat, type FlowChatBody } from '../../flows/flow-chat';
import { AppError, badRequest, parseOr400 } from '../../lib/errors';
import { redisKeys } from '../../lib/redis-keys';
import { approvalSessionId } from '../../models/hitl-repository';
import type { ApiContext } from '../context';
import { authenticate, currentUser, deciderOf, type AuthUser } from '../middleware/authenticate';
import { UI_MESSAGE_STREAM_HEADER, uiMessageSource, type UiStreamOptions } from './ui-message-stream';

/** How long an AI SDK chat id keeps naming its session, and a turn stays resumable by it. */
const CHAT_ID_TTL_SECONDS = 30 * 24 * 3600;
const ACTIVE_TURN_TTL_SECONDS = 24 * 3600;

const uiPart = z.looseObject({ type: z.string().max(100) });
const uiMessage = z.looseObject({
  id: z.string().max(200).optional(),
  role: z.enum(['user', 'assistant', 'system']),
  parts: z.array(uiPart).max(1_000),
});

/**
 * What `DefaultChatTransport` posts: the chat's `id`, its `messages` (the whole conversation, or
 * only the last one when the client sends just that), `trigger` and `messageId`, and the options
 * of the native route the transport's `body` may add.
 */
export const uiChatBodySchema = z.strictObject({
  id: z.string().min(1).max(200),
  messages: z.array(uiMessage).min(1).max(1_000),
  trigger: z.enum(['submit-message', 'regenerate-message']).optional(),
  messageId: z.string().max(200).optional(),
  deviceId: chatBodySchema.shape.deviceId,
  tools: chatBodySchema.shape.tools,
  config: chatBodySchema.shape.config,
  context: chatBodySchema.shape.context,
  multitask: chatBodySchema.shape.multitask,
});
type UiChatBody = z.output<typeof uiChatBodySchema>;

/** A tool part the client answered (`addToolApprovalResponse`): its approval id and decision. */
const answeredPart = z.looseObject({
  state: z.literal('approval-responded'),
  approval: z.looseObject({ id: z.uuid(), approved: z.boolean() }),
});

/** The text a user message says: its text parts, in order. */
const textOf = (message: z.output<typeof uiMessage>) =>
  message.parts
    .filter((part) => part.type === 'text' && typeof part.text === 'string')
    .map((part) => part.text as string)
    .join('');

/** The message's `file` parts, as the native route reads them (`files`); checked there. */
const filesOf = (message: z.output<typeof uiMessage>) =>
  message.parts
    .filter((part) => part.type === 'file')
    .map(({ type, mediaType, filename, url }) => ({ type, mediaType, filename, url }) as Record<string, unknown>);

/** 400: a chatflow answers from its own knowledge setting and takes no files. */
const noFlowFiles = (message: z.output<typeof uiMessage>) => {
  if (filesOf(message).length) throw badRequest('A chatflow takes no files; send files to the assistant (POST /chat/stream)');
};

/** The request asks for the AI SDK's UI message stream (the transport's `headers`). */
const speaksUi = (req: Request) => req.get(UI_MESSAGE_STREAM_HEADER)?.trim().toLowerCase() === 'v1';

type Chat = { kind: 'assistant' } | { kind: 'flow'; flowId: string };

/**
 * The AI SDK's UI message stream on Switchboard's chat routes (`useChat` with
 * `DefaultChatTransport`): a request to `POST /chat/stream` or `POST /flows/:id/chat/stream`
 * that sends `x-vercel-ai-ui-message-stream: v1` posts the transport's body and is answered in that
 * protocol; `GET …/chat/stream/:chatId/stream` resumes the chat's running turn (204 when none runs).
 * The turn itself is the native one: the same checks, limits, budget, queue and event log; an
 * approval the client answers in its next request is decided like `PUT /hitl/requests/:id/…`.
 * Mounted inside the API router (its CORS, body parser and NUL check run first); a request without
 * the header goes on to the native route.
 */
export function aiSdkEdge(ctx: ApiContext): Router {
  const router = Router();
  const auth = authenticate(ctx.tokens);
  const onlyUi: RequestHandler = (req, _res, next) => (speaksUi(req) ? next() : next('route'));
  const flowOf = (req: Request): Chat => ({ kind: 'flow', flowId: z.uuid().safeParse(req.params.flowId).data ?? '' });
  router.post('/chat/stream', onlyUi, auth, (req, res) => post(ctx, req, res, { kind: 'assistant' }));
  router.get('/chat/stream/:chatId/stream', auth, (req, res) => resume(ctx, req, res, { kind: 'assistant' }));
  router.post('/flows/:flowId/chat/stream', onlyUi, auth, (req, res) => post(ctx, req, res, flowOf(req)));
  router.get('/flows/:flowId/chat/stream/:chatId/stream', auth, (req, res) => resume(ctx, req, res, flowOf(req)));
  return router;
}

/**
 * The same for a chatflow's public embed (`POST /embed/public/:embedToken/chat/stream` and its
 * resume), after the embed's own access check (`access`: token, origin, CORS) and body parsing;
 * the turn goes through the embed route's own checks and limits (`turn`).
 */
export function aiSdkEmbedEdge(
  ctx: ApiContext,
  access: RequestHandler[],
  turn: (req: Request, body: FlowChatBody) => Promise<{ embedId: string; start: () => Promise<{ sessionId: string; messageId: string }> }>,
): Router {
  const router = Router();
  const onlyUi: RequestHandler = (req, _res, next) => (speaksUi(req) ? next() : next('route'));
  // A browser's preflight is the embed's own (its allowed origins): without this, the router's
  // automatic OPTIONS answer (`Allow: POST`) would take it before the embed's CORS check.
  router.options('/embed/public/:embedToken/chat/stream', ...access);
  router.options('/embed/public/:embedToken/chat/stream/:chatId/stream', ...access);
  router.post('/embed/public/:embedToken/chat/stream', onlyUi, ...access, (req, res) => postEmbed(ctx, req, res, turn));
  router.get('/embed/public/:embedToken/chat/stream/:chatId/stream', ...access, (req, res) => resumeEmbed(ctx, req, res));
  return router;
}

const embedScope = (embedId: string) => `embed:${embedId}`;

async function postEmbed(ctx: ApiContext, req: Request, res: Response, turn: Parameters<typeof aiSdkEmbedEdge>[2]): Promise<void> {
  const body = parseOr400(uiChatBodySchema, req.body);
  const last = body.messages[body.messages.length - 1];
  if (last.role !== 'user') throw badRequest('The last message must be the user’s');
  noFlowFiles(last);
  const embed = req.embed;
  if (!embed) throw new AppError(404, 'not_found', 'Embed not found');
  const key = keyOf(ctx, embedScope(embed.id), body.id);
  const sessionId = (await ctx.redis.get(key)) ?? undefined;
  const native = parseOr400(flowChatBodySchema, { message: textOf(last), ...(sessionId ? { sessionId } : {}) });
  const { embedId, start } = await turn(req, native);
  await serveTurn(ctx, req, res, `embed:${embedId}`, key, start);
}

async function resumeEmbed(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const embed = req.embed;
  const chatId = z.string().min(1).max(200).safeParse(req.params.chatId);
  const sessionId = embed && chatId.success ? await ctx.redis.get(keyOf(ctx, embedScope(embed.id), chatId.data)) : null;
  await resumeSession(ctx, req, res, sessionId ?? undefined, `embed:${embed?.id ?? ''}`);
}

/** Starts the turn inside the stream door, records which session the chat id names and its running turn, and streams it. */
async function serveTurn(
  ctx: ApiContext,
  req: Request,
  res: Response,
  streamOwner: string,
  chatKeyName: string,
  start: () => Promise<{ sessionId: string; messageId: string }>,
): Promise<void> {
  await ctx.streams.serve(req, res, {
    userId: streamOwner,
    context: {},
    prepare: async () => {
      const turn = await start();
      await ctx.redis
        .multi()
        .set(chatKeyName, turn.sessionId, 'EX', CHAT_ID_TTL_SECONDS)
        .set(redisKeys(ctx.config.redis.keyPrefix).uiChatActiveTurn(turn.sessionId), turn.messageId, 'EX', ACTIVE_TURN_TTL_SECONDS)
        .exec();
      res.setHeader('X-Chat-Session-Id', turn.sessionId);
      res.setHeader(UI_MESSAGE_STREAM_HEADER, 'v1');
      return uiMessageSource((signal) => ctx.sources.chatTurnEvents(turn, signal, true), options(ctx, turn));
    },
  });
}

/** The session's running turn replayed from its start and followed; 204 when none runs. */
async function resumeSession(ctx: ApiContext, req: Request, res: Response, sessionId: string | undefined, streamOwner: string) {
  const messageId = sessionId ? await ctx.redis.get(redisKeys(ctx.config.redis.keyPrefix).uiChatActiveTurn(sessionId)) : null;
  if (!sessionId || !messageId || (await ctx.repos.chat.findReply(sessionId, messageId))) return void res.status(204).end();
  const turn = { sessionId, messageId };
  await ctx.streams.serve(req, res, {
    userId: streamOwner,
    context: {},
    prepare: async () => {
      res.setHeader(UI_MESSAGE_STREAM_HEADER, 'v1');
      return uiMessageSource((signal) => ctx.sources.chatTurnEvents(turn, signal), options(ctx, turn));
    },
  });
}

/** The Redis key naming the session of chat id `chatId` in `scope` (the id hashed: it is the client's text). */
function keyOf(ctx: ApiContext, scope: string, chatId: string): string {
  return redisKeys(ctx.config.redis.keyPrefix).uiChatSession(scope, createHash('sha256').update(chatId).digest('base64url'));
}

/** The Redis key of a chat id: per user (and flow), the id hashed (it is the client's text). */
function chatKey(ctx: ApiContext, user: AuthUser, chat: Chat, chatId: string): string {
  return keyOf(ctx, chat.kind === 'flow' ? `${user.id}:flow:${chat.flowId}` : user.id, chatId);
}

/**
 * The session a chat id stands for: the session itself when the id is one of the caller's session
 * ids (a client continuing a conversation from its history), else the one this chat id started.
 */
async function sessionOf(ctx: ApiContext, user: AuthUser, chat: Chat, chatId: string): Promise<string | undefined> {
  if (z.uuid().safeParse(chatId).success && (await ctx.repos.chat.findOwned(user.id, chatId))) return chatId;
  const known = await ctx.redis.get(chatKey(ctx, user, chat, chatId));
  return known && (await ctx.repos.chat.findOwned(user.id, known)) ? known : undefined;
}

async function post(ctx: ApiContext, req: Request, res: Response, chat: Chat): Promise<void> {
  const user = currentUser(req);
  const body = parseOr400(uiChatBodySchema, req.body);
  const last = body.messages[body.messages.length - 1];
  if (last.role === 'assistant') return continueAfterApproval(ctx, req, res, user, last);
  if (last.role !== 'user') throw badRequest('The last message must be the user’s (or an assistant message with answered approvals)');
  const text = textOf(last);
  if (chat.kind === 'flow') noFlowFiles(last);
  const sessionId = await sessionOf(ctx, user, chat, body.id);
  const start =
    chat.kind === 'flow' ? await flowTurn(ctx, user, chat, text, sessionId) : await assistantTurn(ctx, user, body, text, sessionId);
  await serveTurn(ctx, req, res, start.streamOwner, chatKey(ctx, user, chat, body.id), start.start);
}

/** The checks of `POST /chat/stream`, then a starter of the turn (the body as that route reads it). */
async function assistantTurn(ctx: ApiContext, user: AuthUser, body: UiChatBody, text: string, sessionId: string | undefined) {
  const files = filesOf(body.messages[body.messages.length - 1]);
  const native = parseOr400(chatBodySchema, {
    message: text,
    ...(sessionId ? { sessionId } : {}),
    ...(body.deviceId ? { deviceId: body.deviceId } : {}),
    ...(body.tools ? { tools: body.tools } : {}),
    ...(body.config ? { config: body.config } : {}),
    ...(body.context ? { context: body.context } : {}),
    ...(body.multitask ? { multitask: body.multitask } : {}),
    ...(files.length ? { files } : {}),
  });
  await ctx.limits.requireModelChoice(user.id, native.config);
  await ctx.usage.take('chatPerMinute', user);
  return {
    streamOwner: user.id,
    start: () =>
      ctx.chat.start({
        userId: user.id,
        tier: user.tier,
        message: native.message,
        sessionId: native.sessionId,
        deviceId: native.deviceId,
        tools: native.tools,
        model: native.config,
        context: native.context,
        multitask: native.multitask,
        files: native.files,
      }),
  };
}

/** The checks of `POST /flows/:id/chat/stream` (the owner's chatflow), then a starter of its turn. */
async function flowTurn(ctx: ApiContext, user: AuthUser, chat: Extract<Chat, { kind: 'flow' }>, text: string, sessionId?: string) {
  const native = parseOr400(flowChatBodySchema, { message: text, ...(sessionId ? { sessionId } : {}) });
  await ctx.limits.requireFeature(user.id, 'flows');
  if (!chat.flowId) throw new AppError(404, 'not_found', 'Flow not found');
  const flow = await ctx.flows.get(user.id, chat.flowId);
  if (flow.type !== 'chatflow') throw flowNotChat();
  await ctx.limits.requireFlowModels(user.id, flow.definition);
  await ctx.usage.take('chatPerMinute', user);
  return {
    streamOwner: flow.userId,
    start: () => ctx.flowChats.start({ id: flow.id, userId: flow.userId, ownerTier: user.tier, definition: flow.definition }, native),
  };
}

/**
 * The client answered approvals (`addToolApprovalResponse`, then its automatic send): each is
 * decided as the caller (with an API key: 403 `person_required`, nothing decided; another user's
 * is 404; one already decided elsewhere stands as it was), and the turn's stream goes on from the
 * last answered request.
 */
async function continueAfterApproval(ctx: ApiContext, req: Request, res: Response, user: AuthUser, last: z.output<typeof uiMessage>) {
  const answered = last.parts.flatMap((part) => {
    const parsed = answeredPart.safeParse(part);
    return parsed.success ? [parsed.data.approval] : [];
  });
  if (!answered.length) throw badRequest('The last message is the assistant’s, with no answered approval to go on from');
  for (const answer of answered) {
    try {
      await ctx.approvals.decide(deciderOf(user), answer.id, answer.approved, 'http');
    } catch (error) {
      // Decided already (another surface, the timeout): the stream tells the client how it ended.
      if (!(error instanceof AppError && error.status === 409)) throw error;
    }
  }
  const request = await ctx.approvals.get(user.id, answered[answered.length - 1].id);
  const turn = { sessionId: approvalSessionId(request), messageId: request.messageId };
  await ctx.streams.serve(req, res, {
    userId: user.id,
    context: {},
    prepare: async () => {
      res.setHeader(UI_MESSAGE_STREAM_HEADER, 'v1');
      return uiMessageSource((signal) => ctx.sources.chatTurnEvents(turn, signal), {
        ...options(ctx, turn),
        afterApproval: request.id,
      });
    },
  });
}

/** `GET …/:chatId/stream`: the chat's running turn replayed from its start and followed; 204 when none runs. */
async function resume(ctx: ApiContext, req: Request, res: Response, chat: Chat): Promise<void> {
  const user = currentUser(req);
  const chatId = z.string().min(1).max(200).safeParse(req.params.chatId);
  const sessionId = chatId.success ? await sessionOf(ctx, user, chat, chatId.data) : undefined;
  await resumeSession(ctx, req, res, sessionId, user.id);
}

function options(ctx: ApiContext, turn: { sessionId: string; messageId: string }): UiStreamOptions {
  return {
    messageId: turn.messageId,
    sessionId: turn.sessionId,
    pending: async (approvalId) => (await ctx.repos.hitl.find(approvalId))?.status === 'pending',
  };
}
