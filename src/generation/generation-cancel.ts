import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Config } from '../../config';
import { Pricing } from '../ai/pricing';
import type { CancelSignals } from '../lib/cancel-signals';
import { conflict, forbidden, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import { generations, type GenerationRow, type MemberRole } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import type { QueueRegistry } from '../queues/registry';
import type { CanvasEmitter } from '../realtime/canvas-emitter';
import type { EventWriter, GenerationEventLog } from './event-log';
import type { GenerationLimiter } from './generation-limiter';

/** Tokens spent before the stop; `estimated` when the provider reported none. */
export interface CancelledUsage {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  estimated: boolean;
}

export interface GenerationCancelsDeps {
  config: Pick<Config, 'llm'>;
  repos: Repositories;
  events: GenerationEventLog;
  limiter: GenerationLimiter;
  canvasEvents: CanvasEmitter;
  signals: CancelSignals;
  queues: QueueRegistry;
  logger: Logger;
  metrics?: Metrics;
}

/**
 * Cancelling a generation (decision 0080), used by the API (the request) and the worker
 * (the end). The request is recorded on the generation row (`cancel_requested_at`, only while it
 * is queued or running), then signalled through Redis so the worker streaming the model aborts at
 * once. Exactly one party ends the generation: whoever moves the row from queued/running to
 * `cancelled` writes the terminal event, tells the room and frees the rate-limit slot.
 */
export class GenerationCancels {
  private readonly log: Logger;

  constructor(private readonly deps: GenerationCancelsDeps) {
    this.log = deps.logger.child({ component: 'generation-cancel' });
  }

  /**
   * `POST …/generations/:id/cancel`: the requester, or an editor/owner of the canvas. 404 for a
   * generation not on the canvas, 403 for a viewer who did not start it, 409 `not_running` once it
   * has ended. A job still waiting in the queue is taken off it and ended here.
   */
  async request(input: {
    userId: string;
    role: MemberRole;
    canvasId: string;
    generationId: string;
  }): Promise<{ generationId: string; status: 'cancelling' }> {
    const { repos } = this.deps;
    const existing = await repos.generations.findOnCanvas(input.canvasId, input.generationId);
    if (!existing) throw notFound('Generation');
    if (existing.userId !== input.userId && input.role === 'viewer')
      throw forbidden('Only its requester or an editor can cancel this generation');
    const rows = await repos.db
      .update(generations)
      .set({ cancelRequestedAt: sql`coalesce(${generations.cancelRequestedAt}, now())` })
      .where(and(eq(generations.id, existing.id), inArray(generations.status, ['queued', 'running'])))
      .returning();
    const row = rows[0];
    if (!row) throw conflict('not_running', `This generation has already ended (it is ${existing.status})`);
    await this.deps.signals.request('generation', row.id);
    // Who asked (an editor may stop someone else's generation); the end is audited by whoever ends it.
    await repos.audit
      .write({
        actorId: input.userId,
        onBehalfOf: row.userId,
        action: 'ai.generation.cancel_requested',
        canvasId: row.canvasId,
        targetType: 'generation',
        targetId: row.id,
        details: { status: row.status },
      })
      .catch((error: unknown) => this.log.warn({ err: error, generationId: row.id }, 'cancel request not audited'));
    this.log.info({ generationId: row.id, userId: input.userId }, 'generation cancel requested');
    // Waiting or delayed (between retries): no worker holds it, so it ends here. A job a worker
    // holds is locked (remove answers 0) and that worker ends it.
    const removed = await this.deps.queues
      .get('generation')
      .remove(row.id)
      .catch(() => 0);
    if (removed) await this.end(row);
    return { generationId: row.id, status: 'cancelling' };
  }

  /**
   * Ends the generation as `cancelled` unless it already ended: records the usage so far, frees the
   * slot, appends the terminal `cancelled` event (through `writer` when the worker holds one, so
   * its sequence continues) and sends `generation_status {stage:"cancelled"}` to the room.
   * Returns false when someone else ended it first.
   */
  async end(
    generation: Pick<GenerationRow, 'id' | 'canvasId' | 'userId'>,
    options: { writer?: EventWriter; usage?: CancelledUsage; tier?: string } = {},
  ): Promise<boolean> {
    const { repos, config } = this.deps;
    const usage = options.usage;
    const cost = usage ? Pricing.of(config.llm.pricing).costOf(usage) : 0;
    const ended = await repos.db.transaction(async (tx) => {
      const rows = await tx
        .update(generations)
        .set({
          status: 'cancelled',
          completedAt: new Date(),
          ...(usage
            ? {
                provider: usage.provider,
                model: usage.model,
                inputTokens: usage.inputTokens,
                outputTokens: usage.outputTokens,
                costUsd: cost,
              }
            : {}),
        })
        .where(and(eq(generations.id, generation.id), inArray(generations.status, ['queued', 'running'])))
        .returning({ id: generations.id });
      if (!rows.length) return false;
      if (usage && (usage.inputTokens || usage.outputTokens)) {
        await repos.usage.record(
          { userId: generation.userId, generationId: generation.id, purpose: 'generation', ...usage, costUsd: cost },
          tx,
        );
      }
      await repos.audit.write(
        {
          actorId: generation.userId,
          action: 'ai.generation.cancelled',
          canvasId: generation.canvasId,
          targetType: 'generation',
          targetId: generation.id,
          details: { usage: usage ?? null },
        },
        tx,
      );
      return true;
    });
    if (!ended) return false;
    if (usage && options.tier)
      this.deps.metrics?.countModelCall({ provider: usage.provider, model: usage.model, tier: options.tier }, usage, cost);
    await this.deps.limiter
      .release(generation.userId, generation.id)
      .catch((error: unknown) =>
        this.log.warn({ err: error, generationId: generation.id }, 'slot of a cancelled generation not released; it expires on its own'),
      );
    const event = { type: 'cancelled' as const, generationId: generation.id };
    if (options.writer) {
      options.writer.emit(event);
      await options.writer.flush();
    } else {
      // From outside the worker (the API, the reaper): one atomic append after the last entry.
      await this.deps.events.appendNext(generation.id, event);
    }
    void this.deps.canvasEvents.notify(generation.canvasId, 'generation_status', {
      canvasId: generation.canvasId,
      generationId: generation.id,
      stage: 'cancelled',
    });
    this.log.info({ generationId: generation.id, usage }, 'generation cancelled');
    return true;
  }
}
