import { Router } from 'express';
import { AppError, notFound, parseOr400, zodDetails } from '../../lib/errors';
import { decodeCursor, pageOf, pageQuerySchema, rankIdKey } from '../../lib/pagination';
import { CanvasFullError, PlacementError } from '../../models/blocks-repository';
import { createBlockSchema, parseBlockContent, updateBlockSchema } from '../../schemas/blocks';
import { uuidParam } from '../../schemas/api';
import type { ApiContext } from '../context';
import { requireCanvasRole } from '../middleware/canvas-access';

export const blocksPageQuerySchema = pageQuerySchema(200);

/** Placement problems (unknown neighbour, wrong order) are the client's: 400. */
async function placing<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PlacementError) throw new AppError(400, 'invalid_placement', error.message);
    // 0069: a full canvas is a state of the resource, not bad input.
    if (error instanceof CanvasFullError) throw new AppError(409, 'canvas_full', error.message, { limit: error.limit });
    throw error;
  }
}

/**
 * Sends a change's room event inside the change's transaction (0077): when Redis cannot log it
 * (an outage), the transaction rolls back and the client gets 503 — a stored change that the room
 * never hears of would be a silent divergence, and its seq must come from the canvas log.
 */
async function announce(emit: () => Promise<unknown>): Promise<void> {
  try {
    await emit();
  } catch {
    throw new AppError(503, 'service_unavailable', 'The change could not be sent to the canvas room, so it was not saved; retry shortly', undefined, { 'Retry-After': '2' });
  }
}

/** Blocks of a canvas; every mutation is broadcast to the canvas room. */
export function blockRoutes(ctx: ApiContext): Router {
  const router = Router();
  const { canvases, blocks } = ctx.repos;

  // Rank order, in pages (SPEC §9): `?limit` ≤ 200 (default 200), `?cursor` = the last page's `nextCursor`.
  router.get('/canvases/:id/blocks', async (req, res) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'viewer');
    const query = parseOr400(blocksPageQuerySchema, req.query, 'query');
    const after = query.cursor ? decodeCursor(query.cursor, rankIdKey) : undefined;
    const page = pageOf(await blocks.listPage(canvasId, { limit: query.limit + 1, after }), query.limit, (block) => [block.rank, block.id]);
    res.json({ blocks: page.items, nextCursor: page.nextCursor });
  });

  router.post('/canvases/:id/blocks', async (req, res) => {
    const { canvasId, user } = await requireCanvasRole(req, canvases, 'editor');
    const body = parseOr400(createBlockSchema, req.body);
    const { afterId, beforeId, ...input } = body;
    const block = await placing(() =>
      blocks.create(canvasId, user.id, input, { afterId, beforeId }, ctx.config.canvas.maxBlocks, (created) => announce(() => ctx.canvasEvents.emit(canvasId, 'block_added', { canvasId, block: created }))),
    );
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
      blocks.update(canvasId, blockId.data, { content, placement: moving ? { afterId: body.afterId, beforeId: body.beforeId } : undefined }, (updated) =>
        announce(() => ctx.canvasEvents.emit(canvasId, 'block_updated', { canvasId, block: updated })),
      ),
    );
    if (!block) throw notFound('Block');
    res.json({ block });
  });

  router.delete('/canvases/:id/blocks/:blockId', async (req, res) => {
    const { canvasId } = await requireCanvasRole(req, canvases, 'editor');
    const blockId = uuidParam.safeParse(req.params.blockId);
    if (!blockId.success) throw notFound('Block');
    const deleted = await blocks.delete(canvasId, blockId.data, (id) => announce(() => ctx.canvasEvents.emit(canvasId, 'block_deleted', { canvasId, blockId: id })));
    if (!deleted) throw notFound('Block');
    res.status(204).end();
  });

  return router;
}
