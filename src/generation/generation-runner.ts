import { BudgetExceededError, type BudgetTicket } from '../budget/budget-door';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../../config';
import { Pricing } from '../budget/pricing';
import { CanvasTurnFailed, CanvasTurnStoppedEarly, ModelUnavailableError, runCanvasTurn } from '../ai/canvas-turn';
import { ModelCallCancelled, type ModelGateway } from '../ai/model-gateway';
import type { CancelSignals } from '../lib/cancel-signals';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { Metrics } from '../observability/metrics';
import type { GenerationRow } from '../models/schema';
import type { GenerationJob } from '../producers/generation';
import type { CanvasRoom } from '../schemas/canvas-room';
import type { GenerationStage } from '../schemas/socket-events';
import type { GenerationEventLog, GenerationEventWriter } from './event-log';
import { generationErrorMessage } from './events';
import {
  endedBecause,
  GenerationGone,
  type CancelledUsage,
  type GenerationEndContext,
  type GenerationOutcome,
  type GenerationResult,
  type GenerationRuns,
} from './generation-run';

/** The usage of a result read back from the rows (a re-announce spends nothing). */
const zeroUsage = () => ({ provider: 'none', model: 'none', inputTokens: 0, outputTokens: 0 });

export interface GenerationRunnerDeps {
  config: Config;
  repos: Repositories;
  events: GenerationEventLog;
  canvasEvents: CanvasRoom;
  models: ModelGateway;
  logger: Logger;
  metrics?: Metrics;
  /** Cancel requests from any API node: heard here. */
  signals: CancelSignals;
  /** The generation's run: every end goes through it. */
  runs: GenerationRuns;
}

/** The job's result, for the dashboard. */
export interface GenerationJobResult {
  blockCount: number;
  truncated: boolean;
  cancelled?: boolean;
}

/**
 * The worker side of a generation: run the agent, then end the generation's run with a typed
 * outcome; the run kernel persists every block in the end's transaction, gives the slot back and
 * writes the terminal event. Idempotent: the run is the key, so a retry after the commit
 * re-announces the stored blocks instead of inserting new ones.
 */
export class GenerationRunner {
  constructor(private readonly deps: GenerationRunnerDeps) {}

  /** The `generation/generate` job, its payload parsed by the worker pool. */
  async process(data: GenerationJob, job: Job): Promise<GenerationJobResult> {
    // Watch BEFORE starting the run: a cancel is either on the run's row or heard by the watch.
    const watch = this.deps.signals.watch('generation', data.generationId);
    // The request reserved the first model call; the turn's later calls reserve their own.
    const budget: BudgetTicket = { userId: data.userId, reservationId: data.budget };
    try {
      // What no call takes (cancelled while queued, canvas deleted) the kernel gives back when the run ends.
      await this.deps.runs.hold(data.generationId, budget);
      return await this.run(job, data, watch.signal, budget);
    } finally {
      watch.release();
    }
  }

  private async run(job: Job, data: GenerationJob, signal: AbortSignal, budget: BudgetTicket): Promise<GenerationJobResult> {
    const { runs } = this.deps;
    const log = this.deps.logger.child({ component: 'generation', jobId: job.id, generationId: data.generationId });
    const context: GenerationEndContext = { writer: undefined, tier: data.tier };
    // The log's position is read while the run starts, and nothing waits for it but the writer's
    // first flush: the model call goes out once the run has started. The start moves the run only
    // when it is open and no cancel was asked for, and reads the generation's row in the same statement.
    const writer = this.deps.events.writer(data.generationId);
    const start = await runs.start(data.generationId);
    const generation = start.row !== undefined ? start.row : await this.deps.repos.generations.find(data.generationId);
    context.writer = writer;
    if (!generation) {
      await runs.end(data.generationId, endedBecause('canvas_deleted'), context);
      throw new UnrecoverableError(`Generation ${data.generationId} does not exist`);
    }
    const run = start.run;
    if (!start.started) {
      if (run?.status === 'succeeded' && generation.status === 'completed') {
        // An earlier attempt committed, then stopped before announcing: the slot and the events again.
        log.info('generation already persisted; re-announcing');
        const blocks = await this.deps.repos.blocks.listByGeneration(generation.id);
        const result = this.resultOf(data, generation, {
          blocks: [],
          truncated: generation.truncated,
          usage: zeroUsage(),
          invalidToolCalls: 0,
        });
        await runs.settle(run, { status: 'succeeded', result }, context, { blocks, truncated: generation.truncated, reranked: false });
        return { blockCount: blocks.length, truncated: generation.truncated };
      }
      // Cancelled while queued: it never starts (no model call, the job ends cleanly).
      if (run?.cancelRequestedAt) return this.cancelled(data, context, undefined, log);
      // Ended elsewhere (reaped after a crash, undone, cancelled): nothing to run or announce.
      return { blockCount: 0, truncated: false, cancelled: run?.status === 'cancelled' };
    }

    log.info({ attempt: job.attemptsMade + 1 }, 'generation started');
    const outcome = await this.attempt(data, generation, writer, job, signal, budget).catch((error: unknown) =>
      this.failed(error, job, signal, log, data),
    );
    if (outcome.status === 'cancelled') return this.cancelled(data, context, outcome.usage, log);
    if (outcome.status !== 'succeeded') {
      await runs.end(data.generationId, outcome, context);
      return { blockCount: 0, truncated: false };
    }
    // Told "persisting" now, not on the next turn: embedded PGlite runs the persist's queries on
    // this thread, so a scheduled flush would reach SSE clients only once the rows were in. The
    // write travels while the persist locks its rows, and the blocks go in once it is logged; a
    // failed write is retried by the flush of `complete`, which keeps the order.
    this.stage(data, writer, 'persisting');
    context.persistingLogged = writer
      .flush()
      .catch((error: unknown) => log.warn({ err: error }, 'persisting status not flushed; the next flush retries'));
    const ended = await runs.end(data.generationId, outcome, context).catch(async (error: unknown) => {
      if (error instanceof GenerationGone) {
        await runs.end(data.generationId, endedBecause('canvas_deleted'), context);
        return null;
      }
      // Storing the result failed (the database refused it): retried like a failed model call, and
      // on the last attempt the run ends `failed`, so every stream on it hears the end.
      // The model calls were made and paid for: their usage goes with the failure (or is recorded now, before a retry).
      const { usage, usageByModel } = outcome.result;
      const paid = { ...usage, estimated: (usageByModel ?? []).some((line) => line.estimated === true) };
      const failure = await this.failed(error, job, signal, log, data, paid);
      if (failure.status === 'cancelled') await this.cancelled(data, context, failure.usage, log);
      else await runs.end(data.generationId, failure, context);
      return null;
    });
    if (!ended) return { blockCount: 0, truncated: false };
    if (!ended.won) {
      // The run was not running any more: a cancel that arrived after the last token still wins.
      if (ended.run?.cancelRequestedAt && (ended.run.status === 'queued' || ended.run.status === 'running'))
        return this.cancelled(data, context, { ...outcome.result.usage, estimated: false }, log);
      log.info({ status: ended.run?.status }, 'generation ended elsewhere while it ran; result dropped');
      return { blockCount: 0, truncated: false };
    }
    const stored = ended.persisted ?? { blocks: [], truncated: false };
    const { usage, usageByModel } = outcome.result;
    const pricing = Pricing.of(this.deps.config.llm.pricing);
    for (const line of usageByModel?.length ? usageByModel : [usage])
      this.deps.metrics?.countModelCall({ provider: line.provider, model: line.model, tier: data.tier }, line, pricing.costOf(line));
    log.info({ blockCount: stored.blocks.length, truncated: stored.truncated }, 'generation completed');
    return { blockCount: stored.blocks.length, truncated: stored.truncated };
  }

  /** Ends the run `cancelled`, keeping the usage so far; whoever else ended it first wins. */
  private async cancelled(data: GenerationJob, context: GenerationEndContext, usage: CancelledUsage | undefined, log: Logger) {
    const ended = await this.deps.runs.end(data.generationId, { status: 'cancelled', usage }, context);
    if (ended.won) log.info({ usage }, 'generation cancelled by request');
    return { blockCount: 0, truncated: false, cancelled: true };
  }

  /**
   * An attempt that threw: cancelled when the model call was aborted for a cancel; `failed` on the
   * last attempt (or for a failure no retry mends); otherwise thrown again, for BullMQ to retry.
   */
  private async failed(
    thrown: unknown,
    job: Job,
    signal: AbortSignal,
    log: Logger,
    data: GenerationJob,
    paid?: CancelledUsage,
  ): Promise<GenerationOutcome> {
    if (thrown instanceof ModelCallCancelled) return { status: 'cancelled', usage: thrown.usage };
    // What the turn's calls cost before it failed: kept with the failure, as the budget keeps it.
    const spent =
      paid ?? (thrown instanceof CanvasTurnFailed ? thrown.usage : thrown instanceof CanvasTurnStoppedEarly ? thrown.usage : undefined);
    const error = thrown instanceof CanvasTurnFailed ? thrown.cause : thrown;
    if (signal.aborted) return { status: 'cancelled', ...(spent ? { usage: spent } : {}) };
    const final =
      error instanceof UnrecoverableError ||
      error instanceof ModelUnavailableError ||
      error instanceof CanvasTurnStoppedEarly ||
      error instanceof BudgetExceededError ||
      job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    log.warn({ err: error, attempt: job.attemptsMade + 1, final }, 'generation attempt failed');
    if (!final) {
      // Retried: the next attempt makes calls of its own, so this attempt's, which the budget counted, are recorded now.
      if (spent) await this.recordAttempt(data, spent, log);
      throw thrown;
    }
    const code =
      error instanceof ModelUnavailableError
        ? error.code
        : error instanceof BudgetExceededError
          ? 'budget_exceeded'
          : error instanceof CanvasTurnStoppedEarly
            ? error.code
            : 'generation_failed';
    // Every viewer reads the event and the row: a fixed text, never the cause's message (provider
    // text, SQL parameters); the cause went to the log, redacted. The calls made before the
    // failure keep their usage (an answer the provider stopped early included): they were paid for.
    return { status: 'failed', code, message: generationErrorMessage(code), ...(spent ? { usage: spent } : {}) };
  }

  /** The usage of an attempt that will be retried: its own line, and the metrics. A failed write is logged: the retry goes on. */
  private async recordAttempt(data: GenerationJob, usage: CancelledUsage, log: Logger): Promise<void> {
    const costUsd = Pricing.of(this.deps.config.llm.pricing).costOf(usage);
    const { provider, model, inputTokens, outputTokens, estimated } = usage;
    if (!inputTokens && !outputTokens) return;
    try {
      await this.deps.repos.usage.record({
        userId: data.userId,
        generationId: data.generationId,
        purpose: 'generation',
        provider,
        model,
        inputTokens,
        outputTokens,
        costUsd,
        estimated,
      });
      this.deps.metrics?.countModelCall({ provider, model, tier: data.tier }, usage, costUsd);
    } catch (error) {
      log.warn({ err: error }, 'usage of a retried generation attempt not recorded');
    }
  }

  /** Runs the agent: its blocks stream to the SSE log as they come; the outcome says what to keep. */
  private async attempt(
    data: GenerationJob,
    generation: GenerationRow,
    writer: GenerationEventWriter,
    job: Job,
    signal: AbortSignal,
    budget: BudgetTicket,
  ): Promise<GenerationOutcome> {
    const stage = (value: GenerationStage) => this.stage(data, writer, value);
    // A rerun (a retry, or a job run again after its worker died or was stopped mid-turn) starts
    // over: the drafts an earlier attempt streamed are dropped before this one sends its own.
    if (generation.attempts > 1) writer.emit({ type: 'rollback', generationId: data.generationId, fromIndex: 0 });
    stage('thinking');
    const result = await runCanvasTurn(generation.prompt, {
      models: this.deps.models,
      maxBlocks: this.deps.config.tiers[data.tier].maxBlocksPerGeneration,
      signal,
      budget,
      hooks: {
        onThinking: () => undefined,
        onToolStage: () => stage('tool'),
        onBlock: (block, index) => writer.emit({ type: 'tool_output', generationId: data.generationId, index, block }),
        // A model failed mid-turn and the turn is asked again: clients drop the outputs it had sent.
        onRollback: (keep) => writer.emit({ type: 'rollback', generationId: data.generationId, fromIndex: keep }),
      },
    });
    // A cancel that arrived after the last token still wins: nothing is persisted.
    if (signal.aborted) return { status: 'cancelled', usage: { ...result.usage, estimated: false } };
    // For the dashboard: the persist step does not wait for it (a round trip on every generation's way to its blocks).
    void job
      .updateProgress({ stage: 'persisting', blocks: result.blocks.length })
      .catch((error: unknown) => this.log(data).debug({ err: error }, 'job progress not recorded (dashboard only)'));
    return { status: 'succeeded', result: this.resultOf(data, generation, result) };
  }

  private resultOf(
    data: GenerationJob,
    generation: GenerationRow,
    result: Pick<GenerationResult, 'blocks' | 'truncated' | 'usage' | 'invalidToolCalls'> & Partial<Pick<GenerationResult, 'usageByModel'>>,
  ): GenerationResult {
    return {
      canvasId: data.canvasId,
      afterId: generation.afterId,
      blocks: result.blocks,
      truncated: result.truncated,
      usage: result.usage,
      ...(result.usageByModel ? { usageByModel: result.usageByModel } : {}),
      invalidToolCalls: result.invalidToolCalls,
    };
  }

  /** The component's logger for one generation, for the paths that do not carry the run's. */
  private log(data: GenerationJob) {
    return this.deps.logger.child({ component: 'generation', generationId: data.generationId });
  }

  private stage(data: GenerationJob, writer: GenerationEventWriter, stage: GenerationStage) {
    writer.emit({ type: 'status', generationId: data.generationId, stage });
    void this.deps.canvasEvents.notify(data.canvasId, 'generation_status', {
      canvasId: data.canvasId,
      generationId: data.generationId,
      stage,
    });
  }
}
