import { notFound } from '../../lib/errors';
import { toGenerationView } from '../../models/generations-repository';
import { generateSchema, idempotencyKeySchema, undoSchema } from '../../schemas/api';
import type { ApiContext } from '../context';
import type { AuthUser } from '../middleware/authenticate';
import { canvasAccess } from '../middleware/canvas-access';
import { generationCancelResponse, generationResponse, redoResponse, undoResponse } from '../openapi/response-schemas';
import { routesWith } from '../route';
import { lastEventIdQuery, lastEventSeq } from '../sse';
import { canvasIdParam, generationParams } from './params';
import type { Repositories } from '../../models';

/** The generation routes' port: the generation service, the run kernel (cancel), the canvases and generations repositories, the stream door and sources. */
export type GenerationPorts = Pick<ApiContext, 'streams' | 'sources'> & {
  generations: Pick<ApiContext['generations'], 'start' | 'undo' | 'redo'>;
  runs: Pick<ApiContext['runs'], 'cancel'>;
} & { repos: Pick<Repositories, 'canvases' | 'generations'> };
const route = routesWith<GenerationPorts>();

const SSE =
  'Server-sent events: each message has `id:` (sequence), `event:` and JSON `data` whose `type` is the event name: `status {generationId, stage}`, `tool_output {generationId, index, block}`, `rollback {generationId, fromIndex}` (a model failed mid-turn and the turn is asked again, of the same model once, then of the next: drop every `tool_output` with `index >= fromIndex`; a rerun of the whole generation starts with `fromIndex: 0`), `complete {generationId, blocks, truncated}`, `error {generationId, code, message}`, `cancelled {generationId}` (stopped by a cancel; terminal).';
const tags = ['generation'];

/** What a generation stream needs: three fields, not a copy of the whole context per stream (10,000 per node). */

/** The generation, if it belongs to the canvas the caller can view; else 404. */
async function findGeneration(ctx: GenerationPorts, user: AuthUser, params: { id: string; generationId: string }) {
  const { canvasId } = await canvasAccess(ctx.repos.canvases, user, params.id, 'viewer');
  const generation = await ctx.repos.generations.findOnCanvas(canvasId, params.generationId);
  if (!generation) throw notFound('Generation');
  return generation;
}

/** AI generation: start and stream, inspect, replay, cancel, undo, redo. */
export const generationRoutes = [
  route({
    method: 'post',
    path: '/canvases/:id/ai/generate-stream',
    operationId: 'generateStream',
    tags,
    auth: 'bearer',
    summary: 'Start an AI generation on a canvas and stream its events',
    description:
      'Validates, applies the tier rate and concurrency limits (429 with `Retry-After`), runs the prompt guard (422 `prompt_rejected`), queues the generation and streams its events until it ends.',
    params: canvasIdParam,
    headers: {
      'Idempotency-Key': {
        description: 'A repeat with the same key returns the same generation (header `Idempotent-Replayed: true`)',
        schema: idempotencyKeySchema,
      },
    },
    body: generateSchema,
    responses: {
      200: {
        description: SSE,
        contentType: 'text/event-stream',
        headers: { 'X-Generation-Id': 'The generation id', 'Idempotent-Replayed': '`true` when the Idempotency-Key was seen before' },
      },
    },
    errors: [403, 404, 422, 429, 503],
    handler: async (input, ctx) => {
      const { req, res } = input;
      const { canvasId, user, role } = await canvasAccess(ctx.repos.canvases, input.user, input.params.id, 'viewer');
      const body = input.body;
      const idempotencyKey = input.headers['Idempotency-Key'];
      // The stream slot is taken while the generation's checks and rate limit run, and the start
      // waits for it before it writes anything: a refused stream (429) starts and counts nothing.
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { canvasId },
        alongsideSlot: true,
        prepare: async (_signal, slot) => {
          const { generationId, replayed } = await ctx.generations.start({
            user,
            canvasId,
            role,
            prompt: body.prompt,
            afterId: body.afterId,
            idempotencyKey,
            slot,
          });
          // A replay (a repeated Idempotency-Key) starts nothing and returns without waiting for the
          // slot: a refused one answers its 429 without this generation's headers.
          await slot;
          res.setHeader('X-Generation-Id', generationId);
          if (replayed) res.setHeader('Idempotent-Replayed', 'true');
          return ctx.sources.generation(generationId, 0, !replayed);
        },
      });
    },
  }),

  route({
    method: 'get',
    path: '/canvases/:id/ai/generations/:generationId',
    operationId: 'getGeneration',
    tags,
    auth: 'bearer',
    summary: 'Status, counts, token usage and error of a generation (viewer)',
    params: generationParams,
    responses: { 200: { description: 'The generation', schema: generationResponse } },
    errors: [404],
    handler: async ({ user, params }, ctx) => ({ generation: toGenerationView(await findGeneration(ctx, user, params)) }),
  }),

  route({
    method: 'get',
    path: '/canvases/:id/ai/generations/:generationId/events',
    operationId: 'replayGenerationEvents',
    tags,
    auth: 'bearer',
    summary: "Replay a generation's events, then follow them live",
    description: 'From the start, or after the sequence number in `Last-Event-ID` (header) or `lastEventId` (query).',
    params: generationParams,
    headers: { 'Last-Event-ID': { description: 'Resume after this event id' } },
    query: lastEventIdQuery,
    responses: { 200: { description: SSE, contentType: 'text/event-stream' } },
    errors: [404, 503],
    handler: async (input, ctx) => {
      const { req, res, user, params, headers } = input;
      const generation = await findGeneration(ctx, user, params);
      const afterSeq = lastEventSeq(headers['Last-Event-ID'] ?? input.query.lastEventId);
      await ctx.streams.serve(req, res, {
        userId: user.id,
        context: { canvasId: generation.canvasId, generationId: generation.id },
        prepare: async () => ctx.sources.generation(generation.id, afterSeq),
      });
    },
  }),

  // Cancel: the requester, or an editor/owner; 202 while queued or running, 409 once ended.
  route({
    method: 'post',
    path: '/canvases/:id/ai/generations/:generationId/cancel',
    operationId: 'cancelGeneration',
    tags,
    auth: 'bearer',
    summary: 'Stop a queued or running generation (its requester, or an editor/owner)',
    description:
      'From any API node: the worker aborts the model request, stores nothing, records the usage so far and ends the generation `cancelled` ' +
      '(SSE `cancelled {generationId}`, also replayed to resumed streams; room `generation_status {stage:"cancelled"}`); the rate-limit slot is freed. ' +
      'A generation still queued never starts. 409 `not_running` once it has ended; 403 for a viewer who did not start it.',
    params: generationParams,
    responses: { 202: { description: 'The stop is under way', schema: generationCancelResponse } },
    errors: [403, 404, 409],
    handler: async ({ user, params }, ctx) => {
      const { canvasId, role } = await canvasAccess(ctx.repos.canvases, user, params.id, 'viewer');
      const run = await ctx.runs.cancel('generation', params.generationId, { userId: user.id, role, canvasId });
      return { generationId: run.id, status: 'cancelling' as const };
    },
  }),

  route({
    method: 'post',
    path: '/canvases/:id/ai/generations/:generationId/undo',
    operationId: 'undoGeneration',
    tags,
    auth: 'bearer',
    summary: 'Remove the blocks of a completed generation that no one has edited since (editor); broadcast as `generation_undone`',
    description:
      'A block of the generation that a person has edited since (content or position) is kept and listed in `keptBlockIds`; `{"force": true}` removes it too. ' +
      'With `{"askIfEdited": true}` (and no `force`) an undo that would keep edited blocks changes nothing and answers 409 `edited_blocks` with their ids in `details.editedBlockIds`, so a client can ask its user first. ' +
      'The body is optional. A second undo is 409 `already_undone`; `POST …/redo` puts the removed blocks back.',
    params: generationParams,
    body: undoSchema,
    bodyOptional: true,
    bodyExample: { force: true },
    responses: { 200: { description: 'The removed and the kept block ids', schema: undoResponse } },
    errors: [400, 403, 404, 409],
    handler: async (input, ctx) => {
      const { canvasId } = await canvasAccess(ctx.repos.canvases, input.user, input.params.id, 'editor');
      const { force, askIfEdited } = input.body;
      return ctx.generations.undo({ userId: input.user.id, canvasId, generationId: input.params.generationId, force, askIfEdited });
    },
  }),

  route({
    method: 'post',
    path: '/canvases/:id/ai/generations/:generationId/redo',
    operationId: 'redoGeneration',
    tags,
    auth: 'bearer',
    summary: "Put back what a generation's last undo removed (editor); broadcast as `generation_redone`",
    description:
      'The same blocks with the same ids and ranks, once: a second redo, or a redo of a generation that was not undone, is 409 `nothing_to_redo`. ' +
      '409 `redo_conflict` when a place the blocks held is taken now, `canvas_full` when the canvas has no room for them; nothing is restored then.',
    params: generationParams,
    responses: { 200: { description: 'The restored blocks', schema: redoResponse } },
    errors: [403, 404, 409],
    handler: async ({ user, params }, ctx) => {
      const { canvasId } = await canvasAccess(ctx.repos.canvases, user, params.id, 'editor');
      return ctx.generations.redo({ userId: user.id, canvasId, generationId: params.generationId });
    },
  }),
];
