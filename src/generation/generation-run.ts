import type { Config } from '../../config';
import { Pricing } from '../budget/pricing';
import { forbidden, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { Tx } from '../models/database';
import type { GenerationRow, RunRow } from '../models/schema';
import type { Metrics } from '../observability/metrics';
import type { Enqueue } from '../producers/registry';
import type { CanvasRoom } from '../schemas/canvas-room';
import type { RunOutcome } from '../runs/outcome';
import type { RunHandle, RunKernel, RunKindSpec } from '../runs/run-kernel';
import type { Block, BlockInput } from '../schemas/blocks';
import type { GenerationEventLog, GenerationEventWriter } from './event-log';
import type { GenerationEvent } from './events';
import type { GenerationLimiter } from './generation-limiter';
import { publicStatus } from '../schemas/public-status';

/** Tokens spent before the stop; `estimated` when the provider reported none. */
export interface CancelledUsage {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  estimated: boolean;
}

/** What the model produced, for the persist step. */
export interface GenerationResult {
  canvasId: string;
  afterId: string | null;
  blocks: BlockInput[];
  truncated: boolean;
  /** The model that produced the blocks, with the tokens of every model used. */
  usage: { provider: string; model: string; inputTokens: number; outputTokens: number };
  /** The tokens per model actually used (a fallback's predecessor keeps its own line); unset = all of `usage`'s model. */
  usageByModel?: Array<{ provider: string; model: string; inputTokens: number; outputTokens: number; estimated?: boolean }>;
  invalidToolCalls: number;
}

/** What the worker hands to an end: its writer (the log's sequence continues) and the job's tier. */
export interface GenerationEndContext {
  writer?: GenerationEventWriter;
  tier?: string;
  /** The write of the `persisting` status: the blocks go in only once it is in the log. */
  persistingLogged?: Promise<unknown>;
}

/** What a succeeded end persisted; null for the other ends. */
export type GenerationPersisted = { blocks: Block[]; truncated: boolean; reranked: boolean } | null;

export type GenerationOutcome = RunOutcome<GenerationResult, CancelledUsage>;
/** Its start reads the generation's row in the same statement (`row`). */
export type GenerationRuns = RunHandle<GenerationResult, CancelledUsage, GenerationEndContext, GenerationPersisted, GenerationRow | null>;

/** Why a generation ended from outside its worker: the code clients see, with a fixed message. */
export const GENERATION_END_REASONS = {
  /** Its worker died and its job is gone (the reaper, after a crash). */
  interrupted: 'The generation was interrupted (its worker stopped); please try again',
  /** Its canvas was deleted while it ran. */
  canvas_deleted: 'The canvas was deleted',
} as const;
export type GenerationEndReason = keyof typeof GENERATION_END_REASONS;

/** The failure outcome of an end from outside the worker. */
export const endedBecause = (reason: GenerationEndReason): GenerationOutcome => ({
  status: 'failed',
  code: reason,
  message: GENERATION_END_REASONS[reason],
});

/** Thrown inside the persist step when the generation's row went with its canvas: the end is undone. */
export class GenerationGone extends Error {
  constructor(readonly generationId: string) {
    super(`Generation ${generationId} was deleted with its canvas`);
    this.name = 'GenerationGone';
  }
}

export interface GenerationRunDeps {
  config: Pick<Config, 'llm' | 'auth' | 'canvas'>;
  repos: Repositories;
  events: GenerationEventLog;
  limiter: GenerationLimiter;
  canvasEvents: CanvasRoom;
  /** Queues the fan-out (`broadcast`) of a succeeded generation. */
  enqueue: Enqueue;
  logger: Logger;
  metrics?: Metrics;
}

/**
 * A canvas generation as a kind of run: its row in `generations` follows the
 * run's end in the same transaction (succeeded → `completed` with its blocks, failed → `failed`,
 * cancelled → `cancelled` with the usage so far); its terminal event is the SSE `complete`,
 * `error` or `cancelled`; it holds the requester's concurrency slot. Its requester, or an
 * editor/owner of the canvas, may cancel it.
 */
export function registerGenerationRuns(kernel: RunKernel, deps: GenerationRunDeps): GenerationRuns {
  const log = deps.logger.child({ component: 'generation' });
  const { repos, config } = deps;

  const emit = async (id: string, event: GenerationEvent, writer?: GenerationEventWriter) => {
    if (writer) {
      writer.emit(event);
      await writer.flush();
    } else {
      // From outside the worker (the API, the reaper): one atomic append after the last entry.
      await deps.events.appendNext(id, event);
    }
  };
  const notify = (canvasId: string, generationId: string, stage: 'broadcasting' | 'cancelled') =>
    deps.canvasEvents.notify(canvasId, 'generation_status', { canvasId, generationId, stage });

  const spec: RunKindSpec<GenerationResult, CancelledUsage, GenerationEndContext, GenerationPersisted, GenerationRow | null> = {
    kind: 'generation',
    queue: 'generation',
    jobId: (id) => id,
    signal: 'generation',
    interrupted: { code: 'interrupted', message: GENERATION_END_REASONS.interrupted },
    start: (id, from) => repos.generations.start(id, { from, unlessCancelRequested: true }),
    releases: [{ name: 'generation slot', release: (run) => deps.limiter.release(run.userId, run.id) }],

    async authorizeCancel(id, actor) {
      const existing = actor.canvasId ? await repos.generations.findOnCanvas(actor.canvasId, id) : null;
      if (!existing) throw notFound('Generation');
      if (existing.userId !== actor.userId && (!actor.role || actor.role === 'viewer'))
        throw forbidden('Only its requester or an editor can cancel this generation');
      return { status: existing.status };
    },

    async cancelRequested(run, actor) {
      // Who asked (an editor may stop someone else's generation); the end is audited by whoever ends it.
      try {
        await repos.audit.write({
          actorId: actor.userId,
          onBehalfOf: run.userId,
          action: 'ai.generation.cancel_requested',
          canvasId: actor.canvasId ?? null,
          targetType: 'generation',
          targetId: run.id,
          details: { status: run.status },
        });
      } catch (error) {
        log.warn({ err: error, generationId: run.id }, 'cancel request not audited');
      }
    },

    async persist(tx, run, outcome, context) {
      if (outcome.status === 'succeeded') return persistBlocks(tx, run, outcome.result, context?.persistingLogged);
      if (outcome.status === 'cancelled') {
        await persistCancelled(tx, run, outcome.usage);
        return null;
      }
      const code = outcome.status === 'failed' ? outcome.code : 'timed_out';
      const usage = outcome.status === 'failed' ? outcome.usage : undefined;
      if (!usage) {
        await repos.generations.endIfActive(
          run.id,
          { status: publicStatus('generation', outcome.status), errorCode: code, errorMessage: outcome.message },
          tx,
        );
        return null;
      }
      // The provider answered and stopped early (output limit, content filter): what it cost is the user's usage.
      const costUsd = Pricing.of(config.llm.pricing).costOf(usage);
      const { provider, model, inputTokens, outputTokens } = usage;
      const ended = await repos.generations.endIfActive(
        run.id,
        {
          status: publicStatus('generation', outcome.status),
          errorCode: code,
          errorMessage: outcome.message,
          provider,
          model,
          inputTokens,
          outputTokens,
          costUsd,
        },
        tx,
      );
      if (ended && (inputTokens || outputTokens))
        await repos.usage.record({ userId: run.userId, generationId: run.id, purpose: 'generation', ...usage, costUsd }, tx);
      return null;
    },

    async announce(run, outcome, context, persisted) {
      const writer = context?.writer;
      if (outcome.status === 'succeeded') {
        const { canvasId } = outcome.result;
        const stored = persisted ?? { blocks: [], truncated: outcome.result.truncated, reranked: false };
        // The canvas's ranks were rewritten to make room: collaborators reload its blocks.
        if (stored.reranked) await deps.canvasEvents.notify(canvasId, 'blocks_reranked', { canvasId });
        writer?.emit({ type: 'status', generationId: run.id, stage: 'broadcasting' });
        void notify(canvasId, run.id, 'broadcasting');
        await deps.enqueue('broadcast', 'broadcast-blocks', { generationId: run.id, canvasId });
        await emit(run.id, { type: 'complete', generationId: run.id, blocks: stored.blocks, truncated: stored.truncated }, writer);
        return;
      }
      if (outcome.status === 'cancelled') {
        const usage = outcome.usage;
        if (usage && context?.tier)
          deps.metrics?.countModelCall(
            { provider: usage.provider, model: usage.model, tier: context.tier },
            usage,
            Pricing.of(config.llm.pricing).costOf(usage),
          );
        await emit(run.id, { type: 'cancelled', generationId: run.id }, writer);
        const generation = await repos.generations.find(run.id);
        if (generation) void notify(generation.canvasId, run.id, 'cancelled');
        log.info({ generationId: run.id, usage }, 'generation cancelled');
        return;
      }
      const code = outcome.status === 'failed' ? outcome.code : 'timed_out';
      // The calls a failed run made were paid for: the metrics count them, as the ledger and the budget do.
      const spent = outcome.status === 'failed' ? outcome.usage : undefined;
      if (spent && context?.tier)
        deps.metrics?.countModelCall(
          { provider: spent.provider, model: spent.model, tier: context.tier },
          spent,
          Pricing.of(config.llm.pricing).costOf(spent),
        );
      await emit(run.id, { type: 'error', generationId: run.id, code, message: outcome.message }, writer);
      // The canvas's other viewers saw it start: they learn that it failed, and why.
      const failed = await repos.generations.find(run.id);
      if (failed)
        void deps.canvasEvents.notify(failed.canvasId, 'generation_status', {
          canvasId: failed.canvasId,
          generationId: run.id,
          stage: 'failed',
          code,
          message: outcome.message,
        });
      if (code in GENERATION_END_REASONS)
        log.warn({ generationId: run.id, userId: run.userId, reason: code }, 'generation ended from outside its worker');
    },
  };

  /** The blocks go in beside the row's `completed`, its audit entry and its usage, in the run's end transaction. */
  async function persistBlocks(
    tx: Tx,
    run: RunRow,
    result: GenerationResult,
    persistingLogged: Promise<unknown> | undefined,
  ): Promise<GenerationPersisted> {
    // The generation's row, then its canvas, locked in one statement, while the `persisting` status
    // travels to the log: a reader of the log hears it before any block is written.
    const [count] = await Promise.all([repos.blocks.lockForGeneration(tx, result.canvasId, run.id), persistingLogged]);
    // Its canvas was deleted while the model ran: the end is undone, and the worker ends it for that.
    if (count === null) throw new GenerationGone(run.id);
    let reranked = false;
    const inserted = result.blocks.length
      ? await repos.blocks.insertMany(tx, {
          locked: { count },
          canvasId: result.canvasId,
          createdBy: config.auth.aiAgentUserId,
          inputs: result.blocks,
          placement: { afterId: result.afterId },
          generationSessionId: run.id,
          strict: false,
          // A generation never overfills its canvas: it keeps what fits and says truncated.
          maxBlocks: config.canvas.maxBlocks,
          whenFull: 'truncate',
          onRebalanced: () => (reranked = true),
        })
      : [];
    // The broadcast's copy, written before the commit: an undo or a canvas deletion, which drop it
    // inside their own transactions, then always finds it to drop. Without it the broadcast
    // reads the rows. It travels to Redis while the row's end is written: the commit waits for both.
    const kept = deps.events
      .keepBlocks(run.id, inserted)
      .catch((error: unknown) =>
        log.warn({ err: error, generationId: run.id }, 'broadcast copy of the blocks not kept; the broadcast reads the rows'),
      );
    const truncated = result.truncated || inserted.length < result.blocks.length;
    const { provider, model, inputTokens, outputTokens } = result.usage;
    // Each model used is charged its own tokens at its own price; the row keeps the total.
    const pricing = Pricing.of(config.llm.pricing);
    const lines = (result.usageByModel?.length ? result.usageByModel : [result.usage]).map((line) => ({
      ...line,
      costUsd: pricing.costOf(line),
    }));
    const cost = lines.reduce((sum, line) => sum + line.costUsd, 0);
    const served = lines.find((line) => line.provider === provider && line.model === model) ?? lines[lines.length - 1];
    await repos.generations.complete(tx, {
      id: run.id,
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
        onBehalfOf: run.userId,
        action: 'ai.generation.persisted',
        canvasId: result.canvasId,
        targetType: 'generation',
        targetId: run.id,
        details: { blockCount: inserted.length, truncated, model, invalidToolCalls: result.invalidToolCalls },
      },
      usage: { userId: run.userId, generationId: run.id, purpose: 'generation', ...served },
    });
    for (const line of lines)
      if (line !== served) await repos.usage.record({ userId: run.userId, generationId: run.id, purpose: 'generation', ...line }, tx);
    await kept;
    return { blocks: inserted, truncated, reranked };
  }

  /** The row becomes `cancelled` with the usage so far (recorded and audited), in the run's end transaction. */
  async function persistCancelled(tx: Tx, run: RunRow, usage: CancelledUsage | undefined): Promise<void> {
    const cost = usage ? Pricing.of(config.llm.pricing).costOf(usage) : 0;
    const ended = await repos.generations.endIfActive(
      run.id,
      {
        status: publicStatus('generation', 'cancelled'),
        ...(usage
          ? {
              provider: usage.provider,
              model: usage.model,
              inputTokens: usage.inputTokens,
              outputTokens: usage.outputTokens,
              costUsd: cost,
            }
          : {}),
      },
      tx,
    );
    if (!ended) return; // its row went with its canvas
    if (usage && (usage.inputTokens || usage.outputTokens))
      await repos.usage.record({ userId: run.userId, generationId: run.id, purpose: 'generation', ...usage, costUsd: cost }, tx);
    await repos.audit.write(
      {
        actorId: run.userId,
        action: 'ai.generation.cancelled',
        canvasId: ended.canvasId,
        targetType: 'generation',
        targetId: run.id,
        details: { usage: usage ?? null },
      },
      tx,
    );
  }

  return kernel.register(spec);
}
