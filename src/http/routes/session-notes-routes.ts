import type { Request } from 'express';
import { Router } from 'express';
import { z } from 'zod';
import { NotesEventLog } from '../../assistant/notes-events';
import { notFound, parseOr400 } from '../../lib/errors';
import { RateLimiter } from '../../lib/rate-limiter';
import { ticketNotesJobId } from '../../queues/assistant';
import { uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';
import { notesSource } from '../streams/notes-source';

/** Per user and minute (issue item 6). */
export const RESOLVES_PER_MINUTE = 15;
export const DOCUMENTATION_STREAMS_PER_MINUTE = 20;

export const resolveBodySchema = z.strictObject({ resolutionSummary: z.string().trim().min(1).max(4_000).optional() });
export const emptyBodySchema = z.strictObject({});
/** `POST /chat/sessions/:id/escalate {reason?}` (SPEC §16): the reason is kept on the session. */
export const escalateBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(2_000).optional() });

/**
 * A session's lifecycle and its ticket notes (SPEC §6 "Sessions", decision 0022): resolve answers
 * at once and queues the notes; the notes stream as SSE `data:` chunks and are kept on the session.
 */
export function sessionNotesRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { chat, notes } = ctx.repos;
  const limiter = new RateLimiter(ctx.redis, ctx.config.redis.keyPrefix);
  const notesEvents = new NotesEventLog(ctx.redis, ctx.config.redis.keyPrefix, undefined, ctx.follower);
  const log = ctx.logger.child({ component: 'session-notes' });

  const sessionId = (req: Request) => {
    const id = uuidParam.safeParse(req.params.id);
    // A malformed id answers like a missing session (0014).
    if (!id.success) throw notFound('Chat session');
    return id.data;
  };

  router.post('/chat/sessions/:id/resolve', async (req, res) => {
    const user = currentUser(req);
    const id = sessionId(req);
    const body = parseOr400(resolveBodySchema, req.body ?? {});
    await limiter.take('resolve', user.id, RESOLVES_PER_MINUTE);
    const resolved = await notes.resolve(user.id, id, body.resolutionSummary);
    if (!resolved) throw notFound('Chat session');
    if (resolved.queue) {
      if (resolved.retry) {
        // The failed job keeps its id (and its log its [ERROR]) until removed: clear both first.
        await ctx.queues.get('assistant').remove(ticketNotesJobId(id));
        await notesEvents.reset(id);
      }
      await ctx.queues.enqueue('assistant', 'ticket-notes', { userId: user.id, sessionId: id }).catch(async (error) => {
        // Not queued (Redis down): mark the claim failed so the next resolve can queue it again.
        await notes.setDocumentationStatus(id, 'failed').catch(() => undefined);
        throw error;
      });
      log.info({ userId: user.id, sessionId: id, retry: resolved.retry }, 'ticket notes queued');
    }
    res.json({ sessionId: id, status: 'resolved', documentation: null });
  });

  router.post('/chat/sessions/:id/escalate', async (req, res) => {
    const id = sessionId(req);
    const body = parseOr400(escalateBodySchema, req.body ?? {});
    if (!(await chat.escalate(currentUser(req).id, id, body.reason ?? null))) throw notFound('Chat session');
    res.json({ sessionId: id, status: 'escalated' });
  });

  router.post('/chat/sessions/:id/pause', async (req, res) => {
    const id = sessionId(req);
    parseOr400(emptyBodySchema, req.body ?? {});
    if (!(await notes.setStatus(currentUser(req).id, id, 'paused'))) throw notFound('Chat session');
    res.json({ sessionId: id, status: 'paused' });
  });

  /** The user's session once notes were asked for; 404 otherwise. */
  const documented = async (req: Request) => {
    const session = await chat.findOwned(currentUser(req).id, sessionId(req));
    if (!session?.documentationStatus) throw notFound('Session documentation');
    return session;
  };

  router.get('/chat/sessions/:id/documentation', async (req, res) => {
    const session = await documented(req);
    res.json({ sessionId: session.id, status: session.status, documentationStatus: session.documentationStatus, documentation: session.documentation });
  });

  router.get('/chat/sessions/:id/documentation/stream', async (req, res) => {
    const user = currentUser(req);
    const session = await documented(req);
    await limiter.take('documentation-stream', user.id, DOCUMENTATION_STREAMS_PER_MINUTE);
    await ctx.streams.serve(req, res, {
      userId: user.id,
      context: { sessionId: session.id },
      prepare: async () => notesSource({ notesEvents, repos: ctx.repos, queues: ctx.queues, checkEveryMs: ctx.config.streams.checkIntervalMs }, session),
    });
  });

  return router;
}
