import { createBlockSchema, updateBlockSchema } from '../../../schemas/blocks';
import { blocksPageQuerySchema } from '../../routes/block-routes';
import type { ApiOperation } from '../registry';
import { blockListResponse, blockResponse } from '../response-schemas';
import { blockParams, canvasIdParam } from './params';

/** `block-routes.ts`. */
export const blockOperations: ApiOperation[] = [
  {
    method: 'get', path: '/canvases/:id/blocks', operationId: 'listBlocks', tags: ['blocks'], auth: 'bearer',
    summary: "A canvas's blocks, ordered by rank (viewer), in pages",
    description: '`?limit` 1–200 (default 200); `nextCursor` is null on the last page, else pass it as `?cursor` for the next (a foreign cursor is 400 `invalid_cursor`).',
    params: canvasIdParam,
    query: blocksPageQuerySchema,
    responses: { 200: { description: 'One page of blocks', schema: blockListResponse } },
    errors: [400, 404],
  },
  {
    method: 'post', path: '/canvases/:id/blocks', operationId: 'createBlock', tags: ['blocks'], auth: 'bearer',
    summary: 'Add a block (editor); broadcast to the room as `block_added`',
    description: 'Placed after `afterId` and/or before `beforeId` (an unknown or misordered neighbour is 400 `invalid_placement`); at the end without either. Content is at most 20,000 characters as JSON.',
    params: canvasIdParam,
    body: createBlockSchema,
    responses: { 201: { description: 'The block', schema: blockResponse } },
    errors: [403, 404, 409],
  },
  {
    method: 'patch', path: '/canvases/:id/blocks/:blockId', operationId: 'updateBlock', tags: ['blocks'], auth: 'bearer',
    summary: 'Change content and/or move a block (editor); broadcast as `block_updated`',
    description: "At least one of `content`, `afterId`, `beforeId`. `content` is checked against the block's stored type (its schema is that of `createBlock`'s `content` for the type).",
    params: blockParams,
    body: updateBlockSchema,
    bodyExample: { content: { text: 'Edited text' } },
    responses: { 200: { description: 'The block', schema: blockResponse } },
    errors: [403, 404],
  },
  {
    method: 'delete', path: '/canvases/:id/blocks/:blockId', operationId: 'deleteBlock', tags: ['blocks'], auth: 'bearer',
    summary: 'Delete a block (editor); broadcast as `block_deleted`',
    params: blockParams,
    responses: { 204: 'Deleted' },
    errors: [403, 404],
  },
];
