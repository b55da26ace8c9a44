import { generateSchema, idempotencyKeySchema } from '../../../schemas/api';
import type { ApiOperation } from '../registry';
import { generationCancelResponse, undoResponse } from '../response-schemas';
import { canvasIdParam, generationParams } from './params';

const SSE = 'Server-sent events: each message has `id:` (sequence), `event:` and JSON `data` whose `type` is the event name: `status {generationId, stage}`, `tool_output {generationId, index, block}`, `complete {generationId, blocks, truncated}`, `error {generationId, code, message}`, `cancelled {generationId}` (stopped by a cancel; terminal).';

/** `generation-routes.ts`. */
export const generationOperations: ApiOperation[] = [
  {
    method: 'post', path: '/canvases/:id/ai/generate-stream', operationId: 'generateStream', tags: ['generation'], auth: 'bearer',
    summary: 'Start an AI generation on a canvas and stream its events',
    description: 'Validates, applies the tier rate and concurrency limits (429 with `Retry-After`), runs the prompt guard (422 `prompt_rejected`), queues the generation and streams its events until it ends.',
    params: canvasIdParam,
    headers: { 'Idempotency-Key': { description: 'A repeat with the same key returns the same generation (header `Idempotent-Replayed: true`)', schema: idempotencyKeySchema } },
    body: generateSchema,
    responses: {
      200: { description: SSE, contentType: 'text/event-stream', headers: { 'X-Generation-Id': 'The generation id', 'Idempotent-Replayed': '`true` when the Idempotency-Key was seen before' } },
    },
    errors: [403, 404, 422, 429, 503],
  },
  {
    method: 'get', path: '/canvases/:id/ai/generations/:generationId', operationId: 'getGeneration', tags: ['generation'], auth: 'bearer',
    summary: 'Status, counts, token usage and error of a generation (viewer)',
    params: generationParams,
    responses: { 200: '`{generation: {id, canvasId, userId, status, blockCount, truncated, usage, error, attempts, createdAt, startedAt, completedAt, undoneAt}}`' },
    errors: [404],
  },
  {
    method: 'get', path: '/canvases/:id/ai/generations/:generationId/events', operationId: 'replayGenerationEvents', tags: ['generation'], auth: 'bearer',
    summary: "Replay a generation's events, then follow them live",
    description: 'From the start, or after the sequence number in `Last-Event-ID` (header) or `lastEventId` (query).',
    params: generationParams,
    headers: { 'Last-Event-ID': { description: 'Resume after this event id' } },
    responses: { 200: { description: SSE, contentType: 'text/event-stream' } },
    errors: [404, 503],
  },
  {
    method: 'post', path: '/canvases/:id/ai/generations/:generationId/cancel', operationId: 'cancelGeneration', tags: ['generation'], auth: 'bearer',
    summary: 'Stop a queued or running generation (its requester, or an editor/owner)',
    description:
      'From any API node: the worker aborts the model request, stores nothing, records the usage so far and ends the generation `cancelled` ' +
      '(SSE `cancelled {generationId}`, also replayed to resumed streams; room `generation_status {stage:"cancelled"}`); the rate-limit slot is freed. ' +
      'A generation still queued never starts. 409 `not_running` once it has ended; 403 for a viewer who did not start it.',
    params: generationParams,
    responses: { 202: { description: 'The stop is under way', schema: generationCancelResponse } },
    errors: [403, 404, 409],
  },
  {
    method: 'post', path: '/canvases/:id/ai/generations/:generationId/undo', operationId: 'undoGeneration', tags: ['generation'], auth: 'bearer',
    summary: "Delete every block of a completed generation (editor); broadcast as `generation_undone`",
    params: generationParams,
    responses: { 200: { description: 'The deleted block ids', schema: undoResponse } },
    errors: [403, 404, 409],
  },
];
