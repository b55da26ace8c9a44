import type { Request } from 'express';
import { Router } from 'express';
import { AppError, notFound, parseOr400 } from '../../lib/errors';
import { toGenerationView } from '../../models/generations-repository';
import { generateSchema, idempotencyKeySchema, uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { currentUser } from '../middleware/authenticate';
import { requireCanvasRole } from '../middleware/canvas-access';
import { lastEventSeq } from '../sse';
import { generationSource } from '../streams/generation-source';

/** AI generation: start and stream, inspect, replay, cancel, undo. */
export function generationRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { canvases, generations } = ctx.repos;

  router.post('/canvases/:id/ai/generate-stream', async (req, res) => {
    const { canvasId, user } = await requireCanvasRole(req, canvases, 'viewer');
    const body = parseOr400(generateSchema, req.body);
    const header = req.get('Idempotency-Key');
    const idempotencyKey = header === undefined ? undefined : parseOr400(idempotencyKeySchema, header, 'Idempotency-Key header');
    // The stream slot is taken before the generation starts: a refused stream (429) starts nothing.
    await ctx.streams.serve(req, res, {
      userId: user.id,
      context: { canvasId },
      prepare: async () => {
        const { generationId, replayed } = await ctx.generations.start({ user, canvasId, prompt: body.prompt, afterId: body.afterId, idempotencyKey });
        res.setHeader('X-Generation-Id', generationId);
        if (replayed) res.setHeader('Idempotent-Replayed', 'true');
        return generationSource({ ...ctx, checkEveryMs: ctx.config.streams.checkIntervalMs }, generationId, 0);
      },
    });
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
    const afterSeq = lastEventSeq(req.get('Last-Event-ID') ?? (req.query.lastEventId as string | undefined));
    await ctx.streams.serve(req, res, {
      userId: currentUser(req).id,
      context: { canvasId: generation.canvasId, generationId: generation.id },
      prepare: async () => generationSource({ ...ctx, checkEveryMs: ctx.config.streams.checkIntervalMs }, generation.id, afterSeq),
    });
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
