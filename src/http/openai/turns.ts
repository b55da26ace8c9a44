import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { z } from 'zod';
import { chatBodySchema } from '../../assistant/chat-service';
import { flowChatBodySchema } from '../../flows/flow-chat';
import { AppError, badRequest } from '../../lib/errors';
import { redisKeys } from '../../lib/redis-keys';
import type { ApiContext } from '../context';
import type { AuthUser } from '../middleware/authenticate';
import type { OpenAiModel } from './models';

/** How long a conversation keeps naming its session after its last turn. */
const CONVERSATION_TTL_SECONDS = 30 * 24 * 3600;
/** The request header naming the session a `/v1` request continues (the answer names it too). */
export const SESSION_HEADER = 'x-chat-session-id';

/** One message of a client's conversation, as far as Switchboard reads it. */
export interface Said {
  role: 'user' | 'assistant';
  text: string;
}

/** A turn's identity: its session and its user message. */
export interface Turn {
  sessionId: string;
  messageId: string;
}

/** A turn checked and ready to start: whose stream cap it counts against, and its starter. */
export interface PreparedTurn {
  streamOwner: string;
  start: () => Promise<Turn>;
}

const scopeOf = (user: AuthUser, model: OpenAiModel) => `${user.id}:${model.kind === 'flow' ? model.flow.id : 'assistant'}`;

/** The hash of a conversation: its user and assistant messages in order, each trimmed. */
function conversationHash(said: Said[]): string {
  const hash = createHash('sha256');
  for (const message of said) hash.update(`${message.role}\u0000${message.text.trim()}\u0001`);
  return hash.digest('base64url');
}

/**
 * The session a request continues: the one `X-Chat-Session-Id` names (the caller's, else 404), else
 * the one whose turns so far are exactly the conversation the client sent before its last message,
 * else none (a new session).
 */
export async function sessionFor(
  ctx: Pick<ApiContext, 'redis' | 'config' | 'repos'>,
  req: Request,
  user: AuthUser,
  model: OpenAiModel,
  history: Said[],
): Promise<string | undefined> {
  const named = req.get(SESSION_HEADER);
  if (named !== undefined) {
    const id = z.uuid().safeParse(named.trim());
    if (!id.success) throw badRequest('X-Chat-Session-Id is not a session id', [{ path: SESSION_HEADER, message: 'not a UUID' }]);
    if (!(await ctx.repos.chat.findOwned(user.id, id.data.toLowerCase())))
      throw new AppError(404, 'session_not_found', 'Chat session not found', [{ path: SESSION_HEADER, message: 'unknown session' }]);
    return id.data.toLowerCase();
  }
  if (!history.length) return undefined;
  const key = redisKeys(ctx.config.redis.keyPrefix).openaiConversation(scopeOf(user, model), conversationHash(history));
  const known = await ctx.redis.get(key);
  return known && (await ctx.repos.chat.findOwned(user.id, known)) ? known : undefined;
}

/** Records that `said` (the conversation up to and with the turn's answer) is session `sessionId`. */
export async function rememberConversation(
  ctx: Pick<ApiContext, 'redis' | 'config'>,
  user: AuthUser,
  model: OpenAiModel,
  said: Said[],
  sessionId: string,
): Promise<void> {
  const key = redisKeys(ctx.config.redis.keyPrefix).openaiConversation(scopeOf(user, model), conversationHash(said));
  await ctx.redis.set(key, sessionId, 'EX', CONVERSATION_TTL_SECONDS);
}

/** A native validation error of the turn's text, as the `/v1` field it came from. */
function asField(error: unknown, param: string): unknown {
  if (!(error instanceof AppError) || error.status !== 400) return error;
  const details = Array.isArray(error.details) ? (error.details as Array<{ message?: string }>) : [];
  return new AppError(400, error.code, error.message, [{ path: param, message: details[0]?.message ?? error.message }]);
}

/**
 * The checks of the native route the model maps to (`POST /chat` for the assistant, `POST
 * /flows/:id/chat` for a chatflow: plan, models, per-minute limit), then a starter of the turn.
 * `param` names the request field the text came from, for a validation error.
 */
export async function prepareTurn(
  ctx: ApiContext,
  user: AuthUser,
  model: OpenAiModel,
  text: string,
  sessionId: string | undefined,
  param: string,
): Promise<PreparedTurn> {
  if (model.kind === 'assistant') {
    const parsed = chatBodySchema.safeParse({ message: text, ...(sessionId ? { sessionId } : {}) });
    if (!parsed.success) throw asField(badRequest('Invalid request body', [{ message: parsed.error.issues[0].message }]), param);
    await ctx.limits.requireModelChoice(user.id, undefined);
    await ctx.usage.take('chatPerMinute', user);
    const body = parsed.data;
    return {
      streamOwner: user.id,
      start: () => ctx.chat.start({ userId: user.id, tier: user.tier, message: body.message, sessionId: body.sessionId }),
    };
  }
  const parsed = flowChatBodySchema.safeParse({ message: text, ...(sessionId ? { sessionId } : {}) });
  if (!parsed.success) throw asField(badRequest('Invalid request body', [{ message: parsed.error.issues[0].message }]), param);
  await ctx.limits.requireFeature(user.id, 'flows');
  await ctx.limits.requireFlowModels(user.id, model.flow.definition);
  await ctx.usage.take('chatPerMinute', user);
  const { flow } = model;
  return {
    streamOwner: flow.userId,
    start: () => ctx.flowChats.start({ id: flow.id, userId: flow.userId, ownerTier: user.tier, definition: flow.definition }, parsed.data),
  };
}
