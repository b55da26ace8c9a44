import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../../config';
import { Pricing } from '../ai/pricing';
import { ModelUnavailableError, runCanvasTurn } from '../ai/canvas-turn';
import { ModelCallCancelled, type ModelGateway } from '../ai/model-gateway';
import type { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import type { GenerationRow } from '../models/schema';
import type { GenerationJob } from '../queues/generation';
import type { Enqueue } from '../queues/registry';
import type { CanvasEmitter } from '../realtime/canvas-emitter';
import type { GenerationStage } from '../realtime/events';
import type { Block } from '../schemas/blocks';
import { announceEnded } from './end-generation';
import type { EventWriter, GenerationEventLog } from './event-log';
import type { CancelledUsage, GenerationCancels } from './generation-cancel';
import { generationErrorMessage } from './events';
import { settled } from '../lib/settled';
import type { GenerationLimiter } from './generation-limiter';

/** The persist step's answer when the generation was ended elsewhere while the model ran. */
const ENDED = Symbol('ended');

export interface GenerationRunnerDeps {
  config: Config;
  repos: Repositories;
  events: GenerationEventLog;
  limiter: GenerationLimiter;
  /** Queues the fan-out (`broadcast`). */
  enqueue: Enqueue;
  canvasEvents: CanvasEmitter;
  models: ModelGateway;
  logger: Logger;
  metrics?: Metrics;
  /** Cancel requests from any API node: heard here, ended through `cancels`. */
  signals: CancelSignals;
  cancels: GenerationCancels;
}

/** The agent stopped for a cancel; its blocks are dropped. */
class Cancelled {
  constructor(readonly usage?: CancelledUsage) {}
}

/**
 * The worker side of a generation: run the agent, persist every block in one transaction, hand the
 * fan-out to the `broadcast` queue. Idempotent: the generation row is the key, so a retry after
 * the commit re-announces the stored blocks instead of inserting new ones.
 */
export class GenerationRunner {
  constructor(private readonly deps: GenerationRunnerDeps) {}

  /** The `generation/generate` job, its payload parsed by the worker pool. */
  async process(data: GenerationJob, job: Job): Promise<{ blockCount: number; truncated: boolean; cancelled?: boolean }> {
    // Watch BEFORE reading the row: a cancel is either on the row read below or heard by the watch.
    const watch = this.deps.signals.watch('generation', data.generationId);
    try {
      return await this.run(job, data, watch.signal);
    } finally {
      watch.release();
    }
  }

  private async run(
    job: Job,
    data: GenerationJob,
    signal: AbortSignal,
  ): Promise<{ blockCount: number; truncated: boolean; cancelled?: boolean }> {
    const log = this.deps.logger.child({ component: 'generation', jobId: job.id, generationId: data.generationId });
    // The row and the log's position are independent reads: together. The writer is dropped
    // unused when the row says there is nothing to run.
    const [generation, writer] = await Promise.all([
      this.deps.repos.generations.find(data.generationId),
      this.deps.events.writer(data.generationId),
    ]);
    if (!generation) {
      await this.gone(data);
      throw new UnrecoverableError(`Generation ${data.generationId} does not exist`);
    }
    if (generation.status === 'undone' || generation.status === 'cancelled')
      return { blockCount: 0, truncated: false, cancelled: generation.status === 'cancelled' };
    // Ended elsewhere (reaped after a crash): nothing to run or announce.
    if (generation.status === 'failed') return { blockCount: 0, truncated: false };
    // Set below, before the model is asked; every way out waits for it first, so a late
    // `markRunning` can never revive a row another path has just ended.
    let running: Promise<void> = Promise.resolve();
    const cancelled = async (usage?: CancelledUsage) => {
      await settled(running); // a failed mark is the attempt's error, thrown where `generate` awaits it
      await this.deps.cancels.end(generation, { writer, usage, tier: data.tier });
      log.info({ usage }, 'generation cancelled by request');
      return { blockCount: 0, truncated: false, cancelled: true };
    };
    // Cancelled while queued: it never starts (no model call, the job ends cleanly).
    if (generation.cancelRequestedAt && generation.status !== 'completed') return cancelled();

    try {
      if (generation.status === 'completed') {
        log.info('generation already persisted; re-announcing');
        const blocks = await this.deps.repos.blocks.listByGeneration(generation.id);
        await this.finish(data, writer, blocks, generation.truncated);
        return { blockCount: blocks.length, truncated: generation.truncated };
      }
      // The model request does not wait for the row's `running` mark (a round trip on the way to
      // the first token); the persist step does, since its lock reads the status.
      running = this.deps.repos.generations.markRunning(generation.id);
      void settled(running); // awaited later (by `generate` or the catch below), which reports a failure
      log.info({ attempt: job.attemptsMade + 1 }, 'generation started');
      const outcome = await this.generate(data, generation, writer, job, signal, running);
      if (outcome instanceof Cancelled) return cancelled(outcome.usage);
      if (!outcome) {
        log.info('generation ended elsewhere while it ran; result dropped');
        if (!(await this.deps.repos.generations.find(data.generationId))) await this.gone(data);
        return { blockCount: 0, truncated: false };
      }
      const { blocks, truncated } = outcome;
      await this.finish(data, writer, blocks, truncated);
      log.info({ blockCount: blocks.length, truncated }, 'generation completed');
      return { blockCount: blocks.length, truncated };
    } catch (error) {
      await settled(running); // the attempt's error is reported below; a failed mark adds nothing
      if (error instanceof ModelCallCancelled || signal.aborted)
        return cancelled(error instanceof ModelCallCancelled ? error.usage : undefined);
      const final =
        error instanceof UnrecoverableError || error instanceof ModelUnavailableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      log.warn({ err: error, attempt: job.attemptsMade + 1, final }, 'generation attempt failed');
      if (final) await this.fail(data, writer, error);
      // The job keeps a fixed reason: the provider's own text may quote the prompt (0073).
      if (error instanceof ModelUnavailableError) throw new UnrecoverableError('llm_unavailable: no configured model answered');
      throw error;
    }
  }

  private async generate(
    data: GenerationJob,
    generation: GenerationRow,
    writer: EventWriter,
    job: Job,
    signal: AbortSignal,
    running: Promise<void>,
  ) {
    const { config, repos } = this.deps;
    const stage = (value: GenerationStage) => this.stage(data, writer, value);
    stage('thinking');
    const result = await runCanvasTurn(generation.prompt, {
      models: this.deps.models,
      maxBlocks: config.tiers[data.tier].maxBlocksPerGeneration,
      signal,
      hooks: {
        onThinking: () => undefined,
        onToolStage: () => stage('tool'),
        onBlock: (block, index) => writer.emit({ type: 'tool_output', generationId: data.generationId, index, block }),
      },
    });
    // A cancel that arrived after the last token still wins: nothing is persisted.
    if (signal.aborted) return new Cancelled({ ...result.usage, estimated: false });
    await running;
    // For the dashboard: the persist step does not wait for it (a round trip on every generation's way to its blocks).
    void job
      .updateProgress({ stage: 'persisting', blocks: result.blocks.length })
      .catch((error: unknown) => this.log(data).debug({ err: error }, 'job progress not recorded (dashboard only)'));
    stage('persisting');
    // Sent now, not on the next turn: embedded PGlite runs the persist's queries on this thread,
    // so a scheduled flush would tell SSE clients "persisting" only once the rows were in.
    void writer
      .flush()
      .catch((error: unknown) => this.log(data).warn({ err: error }, 'persisting status not flushed; the next flush retries'));
    const cost = Pricing.of(config.llm.pricing).costOf(result.usage);
    let reranked = false;
    const blocks = await repos.db.transaction(async (tx) => {
      reranked = false; // a retried transaction starts over
      const locked = await repos.generations.lock(data.generationId, tx);
      if (locked?.status === 'completed')
        return { inserted: await repos.blocks.listByGeneration(data.generationId, tx), truncated: locked.truncated };
      // The row lock orders this against the cancel request: one of them sees the other.
      if (locked?.cancelRequestedAt) return null;
      // Ended while the model ran (its canvas was deleted, or it was reaped): keep nothing.
      if (locked?.status !== 'running' && locked?.status !== 'queued') return ENDED;
      const inserted = result.blocks.length
        ? await repos.blocks.insertMany(tx, {
            canvasId: data.canvasId,
            createdBy: config.auth.aiAgentUserId,
            inputs: result.blocks,
            placement: { afterId: generation.afterId },
            generationSessionId: data.generationId,
            strict: false,
            // A generation never overfills its canvas: it keeps what fits and says truncated (0069).
            maxBlocks: config.canvas.maxBlocks,
            whenFull: 'truncate',
            onRebalanced: () => (reranked = true),
          })
        : [];
      const truncated = result.truncated || inserted.length < result.blocks.length;
      const { provider, model, inputTokens, outputTokens } = result.usage;
      await repos.generations.complete(tx, {
        id: data.generationId,
        outcome: {
          blockCount: inserted.length,
          truncated,
          provider,
          model,
          inputTokens,
          outputTokens,
          costUsd: cost,
          completedAt: new Date(),
        },
        audit: {
          actorId: config.auth.aiAgentUserId,
          onBehalfOf: data.userId,
          action: 'ai.generation.persisted',
          canvasId: data.canvasId,
          targetType: 'generation',
          targetId: data.generationId,
          details: { blockCount: inserted.length, truncated, model, invalidToolCalls: result.invalidToolCalls },
        },
        usage: {
          userId: data.userId,
          generationId: data.generationId,
          purpose: 'generation',
          provider,
          model,
          inputTokens,
          outputTokens,
          costUsd: cost,
        },
      });
      // The broadcast's copy, written before the commit: an undo or a canvas deletion, which drop
      // it inside their own transactions, then always finds it to drop (0157). Without it the
      // broadcast reads the rows.
      await this.deps.events
        .keepBlocks(data.generationId, inserted)
        .catch((error: unknown) =>
          this.log(data).warn({ err: error }, 'broadcast copy of the blocks not kept; the broadcast reads the rows'),
        );
      return { inserted, truncated };
    });
    // The canvas's ranks were rewritten to make room: collaborators reload its blocks (0150).
    if (reranked) await this.deps.canvasEvents.notify(data.canvasId, 'blocks_reranked', { canvasId: data.canvasId });
    if (blocks === ENDED) return null;
    if (!blocks) return new Cancelled({ ...result.usage, estimated: false });
    this.deps.metrics?.countModelCall({ provider: result.usage.provider, model: result.usage.model, tier: data.tier }, result.usage, cost);
    return { blocks: blocks.inserted, truncated: blocks.truncated };
  }

  /** Frees the user's slot, queues the fan-out, and completes the SSE stream. */
  private async finish(data: GenerationJob, writer: EventWriter, blocks: Block[], truncated: boolean) {
    this.stage(data, writer, 'broadcasting');
    // Independent writes, together (one wait, not two); both are done before `complete`, so a
    // client that starts its next generation on `complete` finds its slot free.
    await Promise.all([
      this.deps.limiter.release(data.userId, data.generationId),
      this.deps.enqueue('broadcast', 'broadcast-blocks', { generationId: data.generationId, canvasId: data.canvasId }),
    ]);
    writer.emit({ type: 'complete', generationId: data.generationId, blocks, truncated });
    await writer.flush();
  }

  private async fail(data: GenerationJob, writer: EventWriter, error: unknown) {
    const code = error instanceof ModelUnavailableError ? 'llm_unavailable' : 'generation_failed';
    // Every viewer reads the event and the row: a fixed text, never the cause's message (provider
    // text, SQL parameters); the cause went to the log, redacted (0073).
    const message = generationErrorMessage(code);
    // Only a generation still running is failed here: one ended elsewhere already has its terminal event.
    const ended = await this.deps.repos.generations
      .endIfActive(data.generationId, { status: 'failed', errorCode: code, errorMessage: message })
      .catch((error: unknown) => this.log(data).warn({ err: error }, 'failed generation not ended; the reaper ends it'));
    await this.deps.limiter
      .release(data.userId, data.generationId)
      .catch((error: unknown) => this.log(data).warn({ err: error }, 'generation slot not released; it expires on its own'));
    if (ended === null) return;
    writer.emit({ type: 'error', generationId: data.generationId, code, message });
    await writer.flush().catch((error: unknown) => this.log(data).warn({ err: error }, 'error event not flushed'));
  }

  /** The row went with its canvas: free the slot and end the stream (the deletion did too, unless it raced). */
  private async gone(data: GenerationJob) {
    await announceEnded(this.deps, { id: data.generationId, userId: data.userId, canvasId: data.canvasId }, 'canvas_deleted').catch(
      (error: unknown) => this.log(data).warn({ err: error }, 'end of a deleted canvas generation not announced'),
    );
  }

  /** The component's logger for one generation, for the paths that do not carry the run's. */
  private log(data: GenerationJob) {
    return this.deps.logger.child({ component: 'generation', generationId: data.generationId });
  }

  private stage(data: GenerationJob, writer: EventWriter, stage: GenerationStage) {
    writer.emit({ type: 'status', generationId: data.generationId, stage });
    void this.deps.canvasEvents.notify(data.canvasId, 'generation_status', {
      canvasId: data.canvasId,
      generationId: data.generationId,
      stage,
    });
  }
}
