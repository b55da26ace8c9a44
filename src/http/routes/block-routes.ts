import { Router } from 'express';
import { AppError, notFound, parseOr400, zodDetails } from '../../lib/errors';
import { PlacementError } from '../../models/blocks-repository';
import { createBlockSchema, parseBlockContent, updateBlockSchema } from '../../schemas/blocks';
import { uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { requireCanvasRole } from '../middleware/canvas-access';

/** Placement problems (unknown neighbour, wrong order) are the client's: 400. */
async function placing<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PlacementError) throw new AppError(400, 'invalid_placement', error.message);
    throw error;
  }
}

/** Blocks of a canvas; every mutation is broadcast to the canvas room. */
export function blockRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { canvases, blocks } = ctx.repos;

  router.get('/canvases/:id/blocks', async (req, res) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'viewer');
    res.json({ blocks: await blocks.list(canvasId) });
  });

  router.post('/canvases/:id/blocks', async (req, res) => {
    const { canvasId, user } = await requireCanvasRole(req, canvases, 'editor');
    const body = parseOr400(createBlockSchema, req.body);
    const { afterId, beforeId, ...input } = body;
    const block = await placing(() => blocks.create(canvasId, user.id, input, { afterId, beforeId }));
    await ctx.canvasEvents.notify(canvasId, 'block_added', { canvasId, block });
    res.status(201).json({ block });
  });

  router.patch('/canvases/:id/blocks/:blockId', async (req, res) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'editor');
    const blockId = uuidParam.safeParse(req.params.blockId);
    if (!blockId.success) throw notFound('Block');
    const body = parseOr400(updateBlockSchema, req.body);
    const existing = await blocks.find(canvasId, blockId.data);
    if (!existing) throw notFound('Block');
    let content: Record<string, unknown> | undefined;
    if (body.content) {
      const parsed = parseBlockContent(existing.type, body.content);
      if (!parsed.success) throw new AppError(400, 'validation_failed', `Invalid content for a ${existing.type} block`, zodDetails(parsed.error as never));
      content = parsed.data as Record<string, unknown>;
    }
    const moving = body.afterId !== undefined || body.beforeId !== undefined;
    const block = await placing(() =>
      blocks.update(canvasId, blockId.data, { content, placement: moving ? { afterId: body.afterId, beforeId: body.beforeId } : undefined }),
    );
    if (!block) throw notFound('Block');
    await ctx.canvasEvents.notify(canvasId, 'block_updated', { canvasId, block });
    res.json({ block });
  });

  router.delete('/canvases/:id/blocks/:blockId', async (req, res) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'editor');
    const blockId = uuidParam.safeParse(req.params.blockId);
    if (!blockId.success || !(await blocks.delete(canvasId, blockId.data))) throw notFound('Block');
    await ctx.canvasEvents.notify(canvasId, 'block_deleted', { canvasId, blockId: blockId.data });
    res.status(204).end();
  });

  return router;
}
