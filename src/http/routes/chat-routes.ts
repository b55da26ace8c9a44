import type { Request, Response } from 'express';
import { Router } from 'express';
import type { ChatEvent } from '../../assistant/chat-events';
import { chatBodySchema } from '../../assistant/chat-service';
import { AppError, notFound, parseOr400 } from '../../lib/errors';
import { toChatMessageView, toChatSessionView } from '../../models/chat-repository';
import { uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';
import { formatSse, openSse } from '../sse';

const HEARTBEAT_MS = 15_000;

/** Assistant chat: one turn as JSON or as SSE, a session's history, deleting a session. */
export function chatRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { chat } = ctx.repos;

  const startTurn = async (req: Request) => {
    const user = currentUser(req);
    const body = parseOr400(chatBodySchema, req.body);
    return ctx.chat.start({ userId: user.id, message: body.message, sessionId: body.sessionId, deviceId: body.deviceId });
  };

  router.post('/chat', async (req, res) => {
    const turn = await startTurn(req);
    const controller = new AbortController();
    // 'close' on the response: the client went away before the answer (a finished request also closes).
    res.on('close', () => controller.abort());
    let final: Extract<ChatEvent, { type: 'final' | 'error' }> | undefined;
    for await (const event of ctx.chatEvents.follow(turn.messageId, controller.signal)) {
      if (event.type !== 'text_chunk') final = event;
    }
    if (!final) return; // client gone
    if (final.type === 'error') throw new AppError(final.code === 'llm_unavailable' ? 503 : 502, final.code, final.message);
    res.json({ sessionId: turn.sessionId, response: final.response, usage: final.usage });
  });

  router.post('/chat/stream', async (req, res) => {
    if (ctx.shuttingDown.value) throw new AppError(503, 'shutting_down', 'This node is shutting down; retry on another');
    const turn = await startTurn(req);
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    res.setHeader('X-Chat-Session-Id', turn.sessionId);
    openSse(res);
    const endForShutdown = () => controller.abort();
    ctx.openStreams.add(endForShutdown);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    try {
      for await (const event of ctx.chatEvents.follow(turn.messageId, controller.signal)) {
        res.write(formatSse({ event: event.type, data: JSON.stringify(event) }));
      }
    } catch (error) {
      if (!controller.signal.aborted) {
        ctx.logger.warn({ err: error, sessionId: turn.sessionId, reqId: req.id }, 'chat stream failed');
        res.write(formatSse({ event: 'error', data: JSON.stringify({ type: 'error', sessionId: turn.sessionId, code: 'stream_interrupted', message: 'The answer stream was interrupted' }) }));
      }
    } finally {
      ctx.openStreams.delete(endForShutdown);
      clearInterval(heartbeat);
      res.end();
    }
  });

  const ownedSession = async (req: Request) => {
    const id = uuidParam.safeParse(req.params.id);
    const session = id.success ? await chat.findOwned(currentUser(req).id, id.data) : null;
    // Someone else's session answers exactly like a missing one (0014).
    if (!session) throw notFound('Chat session');
    return session;
  };

  router.get('/chat/sessions/:id/history', async (req, res) => {
    const session = await ownedSession(req);
    const messages = await chat.history(session.id);
    res.json({ session: toChatSessionView(session), messages: messages.map(toChatMessageView) });
  });

  router.delete('/chat/sessions/:id', async (req, res) => {
    const session = await ownedSession(req);
    await chat.deleteOwned(session.userId, session.id);
    res.status(204).end();
  });

  return router;
}
