import { AppError, notFound, zodDetails } from '../../lib/errors';
import { decodeCursor, pageOf, pageQuerySchema, rankIdKey } from '../../lib/pagination';
import { CanvasFullError, PlacementError } from '../../models/blocks-repository';
import { createBlockSchema, parseBlockContent, updateBlockSchema } from '../../schemas/blocks';
import { canvasAccess } from '../middleware/canvas-access';
import { blockListResponse, blockResponse } from '../openapi/response-schemas';
import { routesWith } from '../route';
import { blockParams, canvasIdParam } from './params';
import type { ApiContext } from '../context';
import type { StagedCanvasEvent } from '../../schemas/canvas-room';
import type { Repositories } from '../../models';
import type { Config } from '../../../config';

/** The block routes' port: the blocks and canvases repositories, the canvas event emitter, the canvas limits. */
export type BlockPorts = {
  repos: Pick<Repositories, 'blocks' | 'canvases'>;
  canvasEvents: Pick<ApiContext['canvasEvents'], 'stage' | 'notify'>;
  config: Pick<Config, 'canvas'>;
};
const route = routesWith<BlockPorts>();

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
 * Makes one change of blocks in its transaction (`change`) and tells the canvas room. The change's
 * room event is staged inside the transaction (`announce`): logged with its seq, so when Redis cannot
 * log it (an outage) the transaction rolls back and the client gets 503 — a stored change the room
 * never hears of would be a silent divergence, and its seq must come from the canvas log. It is sent
 * once the transaction has committed, so a collaborator who reads the blocks as soon as the event
 * arrives reads the change. A change that rewrote the canvas's ranks (a rebalance, in its
 * transaction) is followed by one `blocks_reranked`: collaborators reload the blocks instead of
 * keeping the old ranks; a failure to send it is logged.
 */
async function changing<T>(
  canvasEvents: BlockPorts['canvasEvents'],
  canvasId: string,
  change: (announce: (stage: () => Promise<StagedCanvasEvent>) => Promise<void>, onRebalanced: () => void) => Promise<T>,
): Promise<T> {
  let staged: StagedCanvasEvent | undefined;
  let reranked = false;
  const announce = async (stage: () => Promise<StagedCanvasEvent>) => {
    try {
      staged = await stage();
    } catch {
      throw new AppError(
        503,
        'service_unavailable',
        'The change could not be sent to the canvas room, so it was not saved; retry shortly',
        undefined,
        { 'Retry-After': '2' },
      );
    }
  };
  const result = await placing(() => change(announce, () => (reranked = true)));
  await staged?.send();
  if (reranked) await canvasEvents.notify(canvasId, 'blocks_reranked', { canvasId });
  return result;
}

const tags = ['blocks'];

/** Blocks of a canvas; every mutation is broadcast to the canvas room. */
export const blockRoutes = [
  // Rank order, in pages: `?limit` ≤ 200 (default 200), `?cursor` = the last page's `nextCursor`.
  route({
    method: 'get',
    path: '/canvases/:id/blocks',
    operationId: 'listBlocks',
    tags,
    auth: 'bearer',
    summary: "A canvas's blocks, ordered by rank (viewer), in pages",
    description:
      '`?limit` 1–200 (default 200); `nextCursor` is null on the last page, else pass it as `?cursor` for the next (a foreign cursor is 400 `invalid_cursor`).',
    params: canvasIdParam,
    query: blocksPageQuerySchema,
    responses: { 200: { description: 'One page of blocks', schema: blockListResponse } },
    errors: [400, 404],
    handler: async (input, ctx) => {
      const { canvasId } = await canvasAccess(ctx.repos.canvases, input.user, input.params.id, 'viewer');
      const query = input.query;
      const after = query.cursor ? decodeCursor(query.cursor, rankIdKey) : undefined;
      const page = pageOf(await ctx.repos.blocks.listPage(canvasId, { limit: query.limit + 1, after }), query.limit, (block) => [
        block.rank,
        block.id,
      ]);
      return { blocks: page.items, nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'post',
    path: '/canvases/:id/blocks',
    operationId: 'createBlock',
    tags,
    auth: 'bearer',
    summary: 'Add a block (editor); broadcast to the room as `block_added`',
    description:
      'Placed after `afterId` and/or before `beforeId` (an unknown or misordered neighbour is 400 `invalid_placement`); at the end without either. Content is at most 20,000 characters as JSON.',
    params: canvasIdParam,
    body: createBlockSchema,
    responses: { 201: { description: 'The block', schema: blockResponse } },
    errors: [403, 404, 409],
    handler: async (input, ctx) => {
      const { canvasId, user } = await canvasAccess(ctx.repos.canvases, input.user, input.params.id, 'editor');
      const { afterId, beforeId, ...fields } = input.body;
      const block = await changing(ctx.canvasEvents, canvasId, (announce, onRebalanced) =>
        ctx.repos.blocks.create(
          canvasId,
          user.id,
          fields,
          { afterId, beforeId },
          ctx.config.canvas.maxBlocks,
          (created) => announce(() => ctx.canvasEvents.stage(canvasId, 'block_added', { canvasId, block: created })),
          onRebalanced,
        ),
      );
      return { block };
    },
  }),

  route({
    method: 'patch',
    path: '/canvases/:id/blocks/:blockId',
    operationId: 'updateBlock',
    tags,
    auth: 'bearer',
    summary: 'Change content and/or move a block (editor); broadcast as `block_updated`',
    description:
      "At least one of `content`, `afterId`, `beforeId`. `content` is checked against the block's stored type (its schema is that of `createBlock`'s `content` for the type).",
    params: blockParams,
    body: updateBlockSchema,
    bodyExample: { content: { text: 'Edited text' } },
    responses: { 200: { description: 'The block', schema: blockResponse } },
    errors: [403, 404],
    handler: async (input, ctx) => {
      const { blocks } = ctx.repos;
      const { canvasId, user } = await canvasAccess(ctx.repos.canvases, input.user, input.params.id, 'editor');
      const { blockId } = input.params;
      const body = input.body;
      const existing = await blocks.find(canvasId, blockId);
      if (!existing) throw notFound('Block');
      let content: Record<string, unknown> | undefined;
      if (body.content) {
        const parsed = parseBlockContent(existing.type, body.content);
        if (!parsed.success)
          throw new AppError(400, 'validation_failed', `Invalid content for a ${existing.type} block`, zodDetails(parsed.error as never));
        content = parsed.data;
      }
      const moving = body.afterId !== undefined || body.beforeId !== undefined;
      const block = await changing(ctx.canvasEvents, canvasId, (announce, onRebalanced) =>
        blocks.update(
          canvasId,
          blockId,
          { content, placement: moving ? { afterId: body.afterId, beforeId: body.beforeId } : undefined, editedBy: user.id },
          (updated) => announce(() => ctx.canvasEvents.stage(canvasId, 'block_updated', { canvasId, block: updated })),
          onRebalanced,
        ),
      );
      if (!block) throw notFound('Block');
      return { block };
    },
  }),

  route({
    method: 'delete',
    path: '/canvases/:id/blocks/:blockId',
    operationId: 'deleteBlock',
    tags,
    auth: 'bearer',
    summary: 'Delete a block (editor); broadcast as `block_deleted`',
    params: blockParams,
    responses: { 204: 'Deleted' },
    errors: [403, 404],
    handler: async ({ user, params }, ctx) => {
      const { canvasId } = await canvasAccess(ctx.repos.canvases, user, params.id, 'editor');
      const deleted = await changing(ctx.canvasEvents, canvasId, (announce) =>
        ctx.repos.blocks.delete(canvasId, params.blockId, (id) =>
          announce(() => ctx.canvasEvents.stage(canvasId, 'block_deleted', { canvasId, blockId: id })),
        ),
      );
      if (!deleted) throw notFound('Block');
    },
  }),
];
