import type { Request, Response } from 'express';
import { Router } from 'express';
import { AppError, notFound, parseOr400 } from '../../lib/errors';
import { toGenerationView } from '../../models/generations-repository';
import { generateSchema, idempotencyKeySchema, uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { requireCanvasRole } from '../middleware/canvas-access';
import { formatSse, lastEventSeq, openSse } from '../sse';

const HEARTBEAT_MS = 15_000;

/** AI generation: start and stream, inspect, replay, cancel, undo. */
export function generationRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { canvases, generations } = ctx.repos;

  router.post('/canvases/:id/ai/generate-stream', async (req, res) => {
    const { canvasId, user } = await requireCanvasRole(req, canvases, 'viewer');
    const body = parseOr400(generateSchema, req.body);
    const header = req.get('Idempotency-Key');
    const idempotencyKey = header === undefined ? undefined : parseOr400(idempotencyKeySchema, header, 'Idempotency-Key header');
    const { generationId, replayed } = await ctx.generations.start({ user, canvasId, prompt: body.prompt, afterId: body.afterId, idempotencyKey });
    res.setHeader('X-Generation-Id', generationId);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    await streamEvents(ctx, req, res, generationId, 0);
  });

  const findGeneration = async (req: Request) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'viewer');
    const id = uuidParam.safeParse(req.params.generationId);
    const generation = id.success ? await generations.findOnCanvas(canvasId, id.data) : null;
    if (!generation) throw notFound('Generation');
    return generation;
  };

  router.get('/canvases/:id/ai/generations/:generationId', async (req, res) => {
    res.json({ generation: toGenerationView(await findGeneration(req)) });
  });

  router.get('/canvases/:id/ai/generations/:generationId/events', async (req, res) => {
    const generation = await findGeneration(req);
    await streamEvents(ctx, req, res, generation.id, lastEventSeq(req.get('Last-Event-ID') ?? (req.query.lastEventId as string | undefined)));
  });

  // SPEC §11: the requester, or an editor/owner; 202 while queued or running, 409 once ended.
  router.post('/canvases/:id/ai/generations/:generationId/cancel', async (req, res) => {
    const { canvasId, user, role } = await requireCanvasRole(req, canvases, 'viewer');
    const id = uuidParam.safeParse(req.params.generationId);
    if (!id.success) throw notFound('Generation');
    res.status(202).json(await ctx.generationCancels.request({ userId: user.id, role, canvasId, generationId: id.data }));
  });

  router.post('/canvases/:id/ai/generations/:generationId/undo', async (req, res) => {
    const { canvasId, user } = await requireCanvasRole(req, canvases, 'editor');
    const id = uuidParam.safeParse(req.params.generationId);
    if (!id.success) throw notFound('Generation');
    const blockIds = await ctx.repos.db.transaction(async (tx) => {
      const generation = await generations.lock(id.data, tx);
      if (!generation || generation.canvasId !== canvasId) throw notFound('Generation');
      if (generation.status === 'undone') throw new AppError(409, 'already_undone', 'This generation was already undone');
      if (generation.status !== 'completed') throw new AppError(409, 'generation_not_completed', `Only a completed generation can be undone (it is ${generation.status})`);
      const deleted = await ctx.repos.blocks.deleteByGeneration(tx, canvasId, generation.id);
      await generations.update(generation.id, { status: 'undone', undoneAt: new Date() }, tx);
      await ctx.repos.audit.write(
        { actorId: user.id, action: 'ai.generation.undone', canvasId, targetType: 'generation', targetId: generation.id, details: { blockCount: deleted.length } },
        tx,
      );
      return deleted;
    });
    await ctx.canvasEvents.notify(canvasId, 'generation_undone', { canvasId, generationId: id.data, blockIds });
    res.json({ generationId: id.data, blockIds });
  });

  return router;
}

/**
 * Streams a generation's events over SSE: stored ones after `afterSeq`, then live ones, until the
 * generation ends or the client leaves. A heartbeat comment keeps idle proxies from closing it.
 */
async function streamEvents(ctx: ApiContext, req: Request, res: Response, generationId: string, afterSeq: number) {
  if (ctx.shuttingDown.value) throw new AppError(503, 'shutting_down', 'This node is shutting down; retry on another');
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  openSse(res);
  // On shutdown: tell the client to reconnect (with Last-Event-ID) after `retryMs`, then close.
  const endForShutdown = (retryMs: number) => {
    res.write(`retry: ${retryMs}\n: node shutting down, reconnect with Last-Event-ID\n\n`);
    controller.abort();
  };
  ctx.openStreams.add(endForShutdown);
  const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
  try {
    for await (const { seq, event } of ctx.events.follow(generationId, afterSeq, controller.signal)) {
      res.write(formatSse({ id: seq, event: event.type, data: JSON.stringify(event) }));
    }
  } catch (error) {
    if (!controller.signal.aborted) {
      ctx.logger.warn({ err: error, generationId, reqId: req.id }, 'generation stream failed');
      res.write(formatSse({ event: 'error', data: JSON.stringify({ type: 'error', generationId, code: 'stream_interrupted', message: 'Event stream interrupted; reconnect with Last-Event-ID' }), retry: 1000 }));
    }
  } finally {
    ctx.openStreams.delete(endForShutdown);
    clearInterval(heartbeat);
    res.end();
  }
}
