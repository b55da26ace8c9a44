import type { Request, Response } from 'express';
import { Router } from 'express';
import { z } from 'zod';
import type { ChatEvent } from '../../assistant/chat-events';
import { chatTurnEvents, chatTurnSource } from '../streams/chat-source';
import { chatBodySchema } from '../../assistant/chat-service';
import { AppError, notFound, parseOr400 } from '../../lib/errors';
import { decodeCursor, encodeCursor, pageQuerySchema } from '../../lib/pagination';
import { toChatMessageView, toChatSessionView } from '../../models/chat-repository';
import { uuidParam } from '../../schemas/api';
import { UsageLimiter } from '../../lib/usage-limiter';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';

/** `GET /chat/sessions`: `?limit` (1–200, default 50) and the opaque `?cursor` of the previous page. */
export const chatSessionsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

/**
 * `GET /chat/sessions/:id/history`: `?limit` 1–200 (default 200, so a conversation of up to 200
 * messages still arrives whole) and `?cursor`. Pages walk back from the newest message; each page
 * reads oldest → newest (0100).
 */
export const historyPageQuerySchema = pageQuerySchema(200);
/** A history cursor is the `seq` of the oldest message of the page before. */
const seqKey = (key: unknown[]) => (key.length === 1 && Number.isSafeInteger(key[0]) && (key[0] as number) > 0 ? (key[0] as number) : null);

/** The cursor names the last session of a page by (updatedAt, id). */
const sessionCursor = {
  encode: (row: { updatedAt: Date; id: string }) => Buffer.from(JSON.stringify([row.updatedAt.toISOString(), row.id])).toString('base64url'),
  decode(cursor: string): { updatedAt: Date; id: string } {
    try {
      const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
      const updatedAt = new Date(at);
      if (!Number.isNaN(updatedAt.getTime()) && z.uuid().safeParse(id).success) return { updatedAt, id };
    } catch {
      // falls through to the 400
    }
    throw new AppError(400, 'invalid_cursor', 'The cursor is not one this API returned');
  },
};

/** Assistant chat: one turn as JSON or as SSE, a session's history, deleting a session. */
export function chatRoutes(ctx: ApiContext): Router {
  const router = Router();
  const usage = new UsageLimiter(ctx.redis, ctx.config.redis.keyPrefix, ctx.config.usageLimits);
  const { chat } = ctx.repos;

  const startTurn = (userId: string, body: ReturnType<typeof chatBodySchema.parse>) =>
    ctx.chat.start({ userId, message: body.message, sessionId: body.sessionId, deviceId: body.deviceId, tools: body.tools, model: body.config });

  router.post('/chat', async (req, res) => {
    const user = currentUser(req);
    const body = parseOr400(chatBodySchema, req.body);
    await usage.take('chatPerMinute', user);
    const turn = await startTurn(user.id, body);
    const controller = new AbortController();
    // 'close' on the response: the client went away before the answer (a finished request also closes).
    res.on('close', () => controller.abort());
    let final: Extract<ChatEvent, { type: 'final' | 'error' | 'cancelled' }> | undefined;
    for await (const event of chatTurnEvents({ ...ctx, checkEveryMs: ctx.config.streams.checkIntervalMs }, turn, controller.signal)) {
      if (event.type === 'final' || event.type === 'error' || event.type === 'cancelled') final = event;
    }
    if (!final) return; // client gone
    if (final.type === 'error') throw new AppError(final.code === 'llm_unavailable' ? 503 : 502, final.code, final.message);
    // Stopped by a cancel (SPEC §11): what the assistant had said so far.
    if (final.type === 'cancelled') return void res.json({ sessionId: turn.sessionId, response: final.response, cancelled: true, usage: final.usage });
    res.json({ sessionId: turn.sessionId, response: final.response, usage: final.usage });
  });

  router.post('/chat/stream', async (req, res) => {
    const user = currentUser(req);
    const body = parseOr400(chatBodySchema, req.body);
    // Counted before the stream opens, so a refusal is a plain 429 with Retry-After.
    await usage.take('chatPerMinute', user);
    await ctx.streams.serve(req, res, {
      userId: user.id,
      context: {},
      prepare: async () => {
        const turn = await startTurn(user.id, body);
        res.setHeader('X-Chat-Session-Id', turn.sessionId);
        return chatTurnSource({ ...ctx, checkEveryMs: ctx.config.streams.checkIntervalMs }, turn);
      },
    });
  });

  const ownedSession = async (req: Request) => {
    const id = uuidParam.safeParse(req.params.id);
    const session = id.success ? await chat.findOwned(currentUser(req).id, id.data) : null;
    // Someone else's session answers exactly like a missing one (0014).
    if (!session) throw notFound('Chat session');
    return session;
  };

  router.get('/chat/sessions', async (req, res) => {
    const query = parseOr400(chatSessionsQuerySchema, req.query);
    const rows = await chat.listOwned(currentUser(req).id, { limit: query.limit + 1, after: query.cursor ? sessionCursor.decode(query.cursor) : undefined });
    const page = rows.slice(0, query.limit);
    res.json({ sessions: page.map(toChatSessionView), nextCursor: rows.length > query.limit ? sessionCursor.encode(page.at(-1)!) : null });
  });

  router.get('/chat/sessions/:id', async (req, res) => {
    res.json({ session: toChatSessionView(await ownedSession(req)) });
  });

  router.get('/chat/sessions/:id/history', async (req, res) => {
    const query = parseOr400(historyPageQuerySchema, req.query, 'query');
    const session = await ownedSession(req);
    const beforeSeq = query.cursor ? decodeCursor(query.cursor, seqKey) : undefined;
    const rows = await chat.historyPage(session.id, { limit: query.limit + 1, beforeSeq });
    // Fetched newest first; the page is answered in reading order, its cursor names its oldest message.
    const page = rows.slice(0, query.limit).reverse();
    const nextCursor = rows.length > query.limit ? encodeCursor([page[0].seq]) : null;
    res.json({ session: toChatSessionView(session), messages: page.map(toChatMessageView), nextCursor });
  });

  // SPEC §11: stops the session's running turn, from any node; 202 while one runs, else 409 not_running.
  router.post('/chat/sessions/:id/cancel', async (req, res) => {
    const id = uuidParam.safeParse(req.params.id);
    if (!id.success) throw notFound('Chat session');
    res.status(202).json(await ctx.chatCancels.cancel(currentUser(req).id, id.data));
  });

  router.delete('/chat/sessions/:id', async (req, res) => {
    const session = await ownedSession(req);
    await chat.deleteOwned(session.userId, session.id);
    res.status(204).end();
  });

  return router;
}
