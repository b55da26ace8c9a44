import type { BudgetDoor } from '../budget/budget-door';
import type { QueueConsumers } from '../producers/worker-presence';
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../lib/redis';
import type { Config, Tier } from '../../config';
import { checkPrompt } from '../ai/prompt-guard';
import { CANVAS_TURN_FIXED } from '../ai/prompt-sizes';
import { AppError, conflict, forbidden, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { MemberRole } from '../models/schema';
import type { Block } from '../schemas/blocks';
import type { QueueRegistry } from '../producers/registry';
import type { CanvasRoom } from '../schemas/canvas-room';
import { KEPT_BLOCKS_TTL_SECONDS, type GenerationEventLog } from './event-log';
import type { GenerationLimiter } from './generation-limiter';
import { endedBecause, type GenerationRuns } from './generation-run';
import { generationErrorMessage } from './events';
import { redisKeys } from '../lib/redis-keys';

const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

export interface StartGenerationInput {
  user: { id: string; tier: Tier };
  canvasId: string;
  prompt: string;
  afterId?: string;
  idempotencyKey?: string;
  /** The caller's role on the canvas when the route has just read it (saves reading it again). */
  role?: MemberRole | null;
  /**
   * The caller's stream slot while it is being taken (the SSE door's `slot`): awaited beside the
   * budget and the rate limit, before anything is written. Refused, the start gives back the rate
   * limit and the budget it took and throws the slot's refusal: a refused stream starts and counts
   * nothing.
   */
  slot?: Promise<void>;
}

/**
 * The API side of a generation: authorise, guard, limit, then record and enqueue. Everything that
 * can refuse the request runs before anything is written.
 */
export class GenerationService {
  constructor(
    private readonly deps: {
      config: Config;
      redis: RedisClient;
      repos: Repositories;
      queues: QueueRegistry;
      events: GenerationEventLog;
      limiter: GenerationLimiter;
      canvasEvents: CanvasRoom;
      logger: Logger;
      /** The generation's run: created with its row, ended through it. */
      runs: GenerationRuns;
      /** Reserves the first model call against the user's budget before anything is written. */
      budget: Pick<BudgetDoor, 'admitPrompt' | 'releaseUnused'>;
      /** Refuses (503 `queue_unconsumed`) a request whose queue no worker consumes, before anything is written. */
      consumers?: QueueConsumers;
    },
  ) {}

  /** Returns the generation to stream: a new one, or the earlier one for a repeated Idempotency-Key. */
  async start(input: StartGenerationInput): Promise<{ generationId: string; replayed: boolean }> {
    const { repos, config, redis, limiter } = this.deps;
    const role = input.role !== undefined ? input.role : await repos.canvases.roleOf(input.canvasId, input.user.id);
    if (!role) throw notFound('Canvas');
    if (role === 'viewer') throw forbidden('Viewers cannot generate on this canvas');
    if (input.afterId && !(await repos.blocks.find(input.canvasId, input.afterId))) {
      throw new AppError(400, 'validation_failed', 'afterId is not a block of this canvas', [
        { path: 'afterId', message: 'unknown block' },
      ]);
    }
    const guard = checkPrompt(input.prompt, config.generation.promptGuard, config.generation.maxPromptChars);
    if (!guard.allowed)
      throw new AppError(422, 'prompt_rejected', 'The prompt was rejected by the prompt guard', { reasons: guard.reasons });
    if (guard.flagged) this.deps.logger.warn({ userId: input.user.id, reasons: guard.reasons }, 'prompt flagged by guard');
    await this.deps.consumers?.require('generation');

    const idemKey = input.idempotencyKey
      ? redisKeys(config.redis.keyPrefix).generationIdempotency(input.user.id, input.idempotencyKey)
      : null;
    if (idemKey) {
      const existing = await redis.get(idemKey);
      if (existing) return this.replay(existing, input.canvasId);
    }

    const generationId = randomUUID();
    // The stream slot (the caller's, being taken), the budget and the rate limit are taken side by
    // side: one wait. When any is refused, what the others took is given back (the rate limit's
    // counts undone, the budget's reservation released here; the stream slot by the SSE door), so a
    // refused request leaves nothing behind, and the answer is the first refusal in the order they
    // were once taken one after another: the stream slot (429 too_many_streams), the budget (429
    // budget_exceeded), the rate limit (429 rate_limited).
    const [slot, admitted, limit] = await Promise.allSettled([
      input.slot,
      // The whole first call of the run (the canvas turn's system prompt and tools beside the prompt): its worker takes this reservation over as it is.
      this.deps.budget.admitPrompt(input.user.id, [input.prompt], undefined, CANVAS_TURN_FIXED),
      limiter.take(input.user.id, generationId, config.tiers[input.user.tier]),
    ]);
    const ticket = { userId: input.user.id, reservationId: admitted.status === 'fulfilled' ? admitted.value : undefined };
    const refused = [slot, admitted, limit].find((result) => result.status === 'rejected');
    if (refused) {
      if (limit.status === 'fulfilled')
        await limiter
          .untake(limit.value)
          .catch((error: unknown) =>
            this.deps.logger.warn({ err: error, generationId }, 'rate limit of a refused start not given back; it expires on its own'),
          );
      await this.deps.budget.releaseUnused(ticket);
      throw refused.reason;
    }
    if (idemKey && (await redis.set(idemKey, generationId, 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX')) !== 'OK') {
      // A concurrent request with the same key won the race: give its slot and reservation back and stream theirs.
      await limiter.release(input.user.id, generationId);
      await this.deps.budget.releaseUnused(ticket);
      const winner = await redis.get(idemKey);
      if (winner) return this.replay(winner, input.canvasId);
      // The winner's key expired between the two reads: this request gave its slot and reservation
      // back, so it must not go on to start a generation without them.
      throw conflict('idempotency_conflict', 'A request with this Idempotency-Key was being handled; retry it');
    }

    // The row with its run (one statement), the first event and the run's hold on the reservation
    // (whoever ends the run gives back what no call took) are independent writes: together, one
    // wait. The job goes last: its worker reads the row and continues the log after `queued`.
    const [created, appended, held] = await Promise.allSettled([
      repos.generations.createWithRun(
        { id: generationId, canvasId: input.canvasId, userId: input.user.id, prompt: input.prompt, afterId: input.afterId ?? null },
        this.deps.runs.row({ id: generationId, userId: input.user.id }),
      ),
      this.deps.events.append(generationId, 1, { type: 'status', generationId, stage: 'queued' }),
      this.deps.runs.hold(generationId, ticket, { beforeQueued: true }),
    ]);
    if (created.status === 'rejected') {
      // Neither the row nor its run was written: only the slot, the key and the reservation go back.
      await this.giveBack(input.user.id, generationId, idemKey);
      await this.deps.budget.releaseUnused(ticket);
      throw created.reason;
    }
    try {
      if (appended.status === 'rejected') throw appended.reason;
      if (held.status === 'rejected') throw held.reason;
      await this.deps.queues.enqueue('generation', 'generate', {
        generationId,
        canvasId: input.canvasId,
        userId: input.user.id,
        tier: input.user.tier,
        ...(ticket.reservationId ? { budget: ticket.reservationId } : {}),
      });
    } catch (error) {
      await this.endUnqueued(generationId, 'queue_unavailable');
      await this.giveBack(input.user.id, generationId, idemKey);
      await this.deps.budget.releaseUnused(ticket);
      throw error;
    }
    void this.deps.canvasEvents.notify(input.canvasId, 'generation_status', { canvasId: input.canvasId, generationId, stage: 'queued' });
    return { generationId, replayed: false };
  }

  /** Ends the run of a start that never reached the queue (its slot goes back with the end). */
  private async endUnqueued(generationId: string, code: 'queue_unavailable' | 'generation_failed'): Promise<void> {
    try {
      await this.deps.runs.end(generationId, { status: 'failed', code, message: generationErrorMessage(code) });
    } catch (error) {
      // The start's own error is the one the caller gets; the reaper ends this run later.
      this.deps.logger.warn({ err: error, generationId }, 'run of a failed start not ended; the reaper ends it');
    }
  }

  /**
   * Undoes a start that failed: the user's slot and the idempotency key. Both expire on their own,
   * so a failure here is logged, not thrown over the error that brought us here.
   */
  private async giveBack(userId: string, generationId: string, idemKey: string | null): Promise<void> {
    const log = this.deps.logger;
    await this.deps.limiter
      .release(userId, generationId)
      .catch((error: unknown) => log.warn({ err: error, generationId }, 'slot of a failed start not released; it expires on its own'));
    if (idemKey)
      await this.deps.redis
        .del(idemKey)
        .catch((error: unknown) =>
          log.warn({ err: error, generationId }, 'idempotency key of a failed start not removed; it expires on its own'),
        );
  }

  /**
   * Deletes a canvas and ends its generations: their rows go first, then the canvas, so the
   * requesters' concurrency slots are released and each SSE stream gets a terminal `error`
   * (`canvas_deleted`) here; a worker still running one finds no row and keeps nothing. A completed
   * one's copy of its blocks is dropped before the commit, so its broadcast, if still due, finds
   * neither copy nor row and sends nothing.
   */
  async deleteCanvas(canvasId: string): Promise<void> {
    const { repos, events } = this.deps;
    const deleted = await repos.generations.deleteCanvas(canvasId, async (rows) => {
      // Copies live KEPT_BLOCKS_TTL_SECONDS after the commit; twice that covers clock skew between nodes.
      const since = Date.now() - 2 * KEPT_BLOCKS_TTL_SECONDS * 1000;
      await events.forgetBlocks(
        ...rows.filter((row) => row.status === 'completed' && (row.completedAt?.getTime() ?? 0) > since).map((row) => row.id),
      );
    });
    const active = deleted.filter((row) => row.status === 'queued' || row.status === 'running');
    const results = await Promise.allSettled(active.map((generation) => this.deps.runs.end(generation.id, endedBecause('canvas_deleted'))));
    for (const result of results)
      if (result.status === 'rejected')
        this.deps.logger.warn({ err: result.reason, canvasId }, 'could not end a generation of a deleted canvas; the reaper ends it');
    // Waiting jobs are dropped; an active one is left to its worker (a locked job cannot be removed).
    const removals = await Promise.allSettled(active.map((generation) => this.deps.queues.remove('generation', generation.id)));
    for (const removal of removals)
      if (removal.status === 'rejected')
        this.deps.logger.warn({ err: removal.reason, canvasId }, 'job of a deleted canvas generation not removed; its worker finds no row');
  }

  /**
   * Undoes a completed generation (the caller is an editor of the canvas): removes its blocks no
   * person has edited since (every one with `force`), marks it `undone` and writes the audit row in
   * one transaction, then tells the room which blocks went and which were kept. 404 when it is not a
   * generation of this canvas, 409 when it was undone already or has not completed, and 409
   * `edited_blocks` (nothing changed) when `askIfEdited` is set and some of its blocks were edited.
   */
  async undo(input: {
    userId: string;
    canvasId: string;
    generationId: string;
    force?: boolean;
    askIfEdited?: boolean;
  }): Promise<{ generationId: string; blockIds: string[]; keptBlockIds: string[] }> {
    const { repos } = this.deps;
    const { userId, canvasId, generationId } = input;
    // Its broadcast may still be due: it sends from this copy without reading the row.
    const force = input.force ?? false;
    const askIfEdited = !force && (input.askIfEdited ?? false);
    const undone = await repos.generations.undo({ generationId, canvasId, actorId: userId, force, askIfEdited }, () =>
      this.deps.events.forgetBlocks(generationId),
    );
    if (!undone.undone) {
      if (undone.reason === 'not_found') throw notFound('Generation');
      if (undone.reason === 'edited')
        throw new AppError(409, 'edited_blocks', 'People have edited blocks of this generation since; keep them, or undo with force', {
          editedBlockIds: undone.editedBlockIds,
        });
      if (undone.reason === 'already_undone') throw new AppError(409, 'already_undone', 'This generation was already undone');
      throw new AppError(409, 'generation_not_completed', `Only a completed generation can be undone (it is ${undone.status})`);
    }
    const { blockIds, keptBlockIds } = undone;
    await this.deps.canvasEvents.notify(canvasId, 'generation_undone', { canvasId, generationId, blockIds, keptBlockIds });
    return { generationId, blockIds, keptBlockIds };
  }

  /**
   * Puts back what the generation's last undo removed (the caller is an editor of the canvas): the
   * same blocks, ids and ranks, once; then tells the room. 404 when it is not a generation of this
   * canvas; 409 when there is nothing to redo, the canvas is full, or a place the blocks held is
   * taken now.
   */
  async redo(input: { userId: string; canvasId: string; generationId: string }): Promise<{ generationId: string; blocks: Block[] }> {
    const { repos, config } = this.deps;
    const { userId, canvasId, generationId } = input;
    const redone = await repos.generations.redo({ generationId, canvasId, actorId: userId, maxBlocks: config.canvas.maxBlocks });
    if (!redone.redone) {
      if (redone.reason === 'not_found') throw notFound('Generation');
      if (redone.reason === 'nothing_to_redo')
        throw new AppError(409, 'nothing_to_redo', 'This generation has no undo to redo (it was never undone, or redone already)');
      if (redone.reason === 'canvas_full')
        throw new AppError(409, 'canvas_full', `The canvas has no room for the blocks of this generation (at most ${redone.limit})`, {
          limit: redone.limit,
        });
      throw new AppError(409, 'redo_conflict', 'The canvas has changed where these blocks stood; add them again instead');
    }
    const { blocks } = redone;
    await this.deps.canvasEvents.notify(canvasId, 'generation_redone', { canvasId, generationId, blocks });
    return { generationId, blocks };
  }

  private async replay(generationId: string, canvasId: string) {
    const existing = await this.deps.repos.generations.findOnCanvas(canvasId, generationId);
    if (!existing) throw new AppError(409, 'idempotency_key_reused', 'This Idempotency-Key was used for another canvas');
    return { generationId, replayed: true };
  }
}
