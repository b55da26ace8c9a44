import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Config, Tier } from '../../config';
import type { LimitsResolver } from '../auth/limits';
import { AppError, conflict, notFound } from '../lib/errors';
import type { Logger } from '../lib/logger';
import { decodeCursor, pageOf, timeIdKey } from '../lib/pagination';
import type { UsageLimiter } from '../lib/usage-limiter';
import type { Repositories } from '../models';
import type { VersionSummary } from '../models/evals-repository';
import type { EvaluationResultRow, EvaluationRow } from '../models/schema';
import type { QueueRegistry } from '../producers/registry';
import type { QueueConsumers } from '../producers/worker-presence';
import { inputKeys, type AgentflowDefinition } from '../flows/definition';
import type { FlowExecutions } from '../flows/flow-executions';
import { checkScorers, scorersSchema } from './scorers';

/** Versions one evaluation may compare. */
export const MAX_EVALUATION_VERSIONS = 5;
/** Executions an evaluation runs at once when the request names no figure. */
export const DEFAULT_EVALUATION_CONCURRENCY = 2;

export const createEvaluationSchema = z.strictObject({
  flowId: z.uuid().describe('An agentflow of the caller'),
  datasetId: z.uuid().describe('A dataset of the caller'),
  versions: z
    .array(z.number().int().positive())
    .min(1)
    .max(MAX_EVALUATION_VERSIONS)
    .refine((versions) => new Set(versions).size === versions.length, 'each version once')
    .describe('The saved versions of the flow to run the dataset against (each row is run once per version)'),
  scorers: scorersSchema.describe('How each answer is scored; an answer’s score is the mean of its scorers’ (each 0 to 1)'),
  concurrency: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      `Executions of this evaluation running at once (default ${DEFAULT_EVALUATION_CONCURRENCY}, at most \`EVAL_MAX_CONCURRENCY\`)`,
    ),
});

export interface EvaluationsDeps {
  repos: Pick<Repositories, 'evals' | 'flows'>;
  config: Pick<Config, 'evals'>;
  queues: Pick<QueueRegistry, 'enqueue'>;
  /** Cancels the executions still running when an evaluation is cancelled. */
  executions: Pick<FlowExecutions, 'cancel'>;
  /** Whether a judge's `model` is served here. */
  knows: (ref: { provider: string; model: string }) => boolean;
  limits: Pick<LimitsResolver, 'requireFlowModels'>;
  usage: Pick<UsageLimiter, 'take'>;
  /** Refuses (503 `queue_unconsumed`) an evaluation no worker would run, before anything is written. */
  consumers?: Pick<QueueConsumers, 'require'>;
  logger: Logger;
}

/**
 * Evaluations on the API side: start one (every check before anything is written), read it with
 * its results and its comparison of versions, cancel it. The worker side is `EvaluationRunner`.
 */
export class Evaluations {
  private readonly log: Logger;

  constructor(private readonly deps: EvaluationsDeps) {
    this.log = deps.logger.child({ component: 'evaluations' });
  }

  /**
   * Starts an evaluation of the caller's agentflow: 404 for a flow, dataset or version the caller
   * lacks, 409 `not_an_agentflow`, 400 for scorers that do not compile and for dataset rows that
   * lack an input a version's prompts read (`missing_input`), 429 `too_many_evaluations` past
   * `EVAL_MAX_RUNNING`. Nothing is written until every check passed.
   */
  async create(user: { id: string; tier?: Tier }, body: z.output<typeof createEvaluationSchema>): Promise<EvaluationRow> {
    const { repos, config } = this.deps;
    const flow = await repos.flows.get(user.id, body.flowId);
    if (!flow) throw notFound('Flow');
    if (flow.type !== 'agentflow') throw conflict('not_an_agentflow', 'Only an agentflow can be evaluated');
    const dataset = await repos.evals.dataset(user.id, body.datasetId);
    if (!dataset) throw notFound('Dataset');
    const definitions = new Map<number, AgentflowDefinition>();
    for (const [index, version] of body.versions.entries()) {
      const found = await repos.flows.version(flow.id, version);
      if (!found)
        throw new AppError(404, 'not_found', `Flow version ${version} not found`, [
          { path: `versions.${index}`, message: `the flow has no version ${version}` },
        ]);
      definitions.set(version, found.definition as unknown as AgentflowDefinition);
    }
    const scorers = checkScorers(body.scorers, this.deps.knows);
    const concurrency = body.concurrency ?? Math.min(DEFAULT_EVALUATION_CONCURRENCY, config.evals.maxConcurrency);
    if (concurrency > config.evals.maxConcurrency)
      throw new AppError(400, 'validation_failed', `Invalid request body: concurrency is at most ${config.evals.maxConcurrency}`, [
        { path: 'concurrency', message: `at most ${config.evals.maxConcurrency}` },
      ]);
    for (const definition of definitions.values()) await this.deps.limits.requireFlowModels(user.id, definition);
    await this.checkInputs(dataset.id, definitions);
    if ((await repos.evals.countRunning(user.id)) >= config.evals.maxRunning)
      throw new AppError(
        429,
        'too_many_evaluations',
        `At most ${config.evals.maxRunning} evaluations may run at once; wait for one or cancel it`,
        {
          limit: config.evals.maxRunning,
        },
      );
    await this.deps.consumers?.require('flows');
    await this.deps.usage.take('flowExecutionsPerMinute', user);
    const evaluation = await repos.evals.createEvaluation({
      id: randomUUID(),
      userId: user.id,
      flowId: flow.id,
      datasetId: dataset.id,
      versions: body.versions,
      scorers,
      tier: user.tier ?? 'free',
      concurrency,
    });
    try {
      await this.deps.queues.enqueue('flows', 'evaluation-advance', { evaluationId: evaluation.id });
    } catch (error) {
      this.log.error({ err: error, evaluationId: evaluation.id }, 'evaluation could not be queued');
      await repos.evals.stop(evaluation.id, {
        status: 'failed',
        errorCode: 'queue_unavailable',
        errorMessage: 'The evaluation could not be queued',
      });
      throw new AppError(503, 'queue_unavailable', 'The evaluation could not be queued; try again', undefined, { 'Retry-After': '2' });
    }
    this.log.info({ evaluationId: evaluation.id, flowId: flow.id, versions: body.versions, rows: dataset.rowCount }, 'evaluation started');
    return evaluation;
  }

  /** Every row must hold the inputs each version's prompts read: 400 `missing_input` naming the first rows that do not. */
  private async checkInputs(datasetId: string, definitions: Map<number, AgentflowDefinition>): Promise<void> {
    const rows = await this.deps.repos.evals.datasetRows(datasetId);
    const problems: Array<{ row: number; version: number; missing: string[] }> = [];
    for (const [version, definition] of definitions) {
      const keys = inputKeys(definition);
      for (const row of rows) {
        const missing = keys.filter((key) => !(key in row.input) || row.input[key] === undefined);
        if (missing.length) problems.push({ row: row.position, version, missing });
      }
    }
    if (!problems.length) return;
    const first = problems[0];
    throw new AppError(
      400,
      'missing_input',
      `Dataset row ${first.row} lacks ${first.missing.map((key) => `"${key}"`).join(', ')}, read by version ${first.version}'s prompts` +
        (problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''),
      problems.slice(0, 20),
    );
  }

  /** The caller's evaluation, else 404. */
  async get(userId: string, id: string): Promise<EvaluationRow> {
    const evaluation = await this.deps.repos.evals.evaluation(userId, id);
    if (!evaluation) throw notFound('Evaluation');
    return evaluation;
  }

  /** The caller's evaluations, newest first (of one flow when `flowId` is given). */
  async list(userId: string, query: { limit: number; cursor?: string; flowId?: string }) {
    const after = query.cursor ? decodeCursor(query.cursor, timeIdKey) : undefined;
    const rows = await this.deps.repos.evals.listEvaluations(userId, { limit: query.limit + 1, after, flowId: query.flowId });
    return pageOf(rows, query.limit, (row) => [row.createdAt.toISOString(), row.id]);
  }

  async results(userId: string, id: string): Promise<{ evaluation: EvaluationRow; results: EvaluationResultRow[] }> {
    const evaluation = await this.get(userId, id);
    return { evaluation, results: await this.deps.repos.evals.results(evaluation.id) };
  }

  /**
   * The versions side by side: each one's mean score (overall and per scorer), cost and latency
   * (p50, p95), and which version is best on each (the highest score; the lowest cost and p95).
   */
  async comparison(userId: string, id: string): Promise<{ evaluation: EvaluationRow; versions: VersionSummary[]; best: Best }> {
    const evaluation = await this.get(userId, id);
    const versions = await this.deps.repos.evals.summary(evaluation.id);
    return { evaluation, versions, best: bestOf(versions) };
  }

  /**
   * Cancels a running evaluation (409 `not_running` once it ended): rows not started are never
   * run, and the executions still running are cancelled.
   */
  async cancel(userId: string, id: string): Promise<{ evaluationId: string; status: 'cancelled' }> {
    const evaluation = await this.get(userId, id);
    const running = await this.deps.repos.evals.stop(evaluation.id, { status: 'cancelled' });
    if (!running) throw conflict('not_running', `The evaluation is ${evaluation.status}`);
    await cancelExecutions(this.deps.executions, evaluation, running, this.log);
    this.log.info({ evaluationId: evaluation.id, running: running.length }, 'evaluation cancelled');
    return { evaluationId: evaluation.id, status: 'cancelled' };
  }
}

/** The version best on each measure (null while no version has one). */
export interface Best {
  score: number | null;
  costUsd: number | null;
  latencyP95Ms: number | null;
}

function bestOf(versions: VersionSummary[]): Best {
  const pick = (value: (v: VersionSummary) => number | null, better: (a: number, b: number) => boolean) => {
    let best: { version: number; value: number } | null = null;
    for (const version of versions) {
      const v = value(version);
      if (v === null) continue;
      if (!best || better(v, best.value)) best = { version: version.version, value: v };
    }
    return best?.version ?? null;
  };
  const finished = (v: VersionSummary) => v.scored + v.failed;
  return {
    score: pick(
      (v) => v.meanScore,
      (a, b) => a > b,
    ),
    costUsd: pick(
      (v) => (finished(v) ? v.costUsd / finished(v) : null),
      (a, b) => a < b,
    ),
    latencyP95Ms: pick(
      (v) => v.latencyMs.p95,
      (a, b) => a < b,
    ),
  };
}

/** Cancels an evaluation's executions that were running (one already ended, or never started, is no error). */
export async function cancelExecutions(
  executions: Pick<FlowExecutions, 'cancel'>,
  evaluation: Pick<EvaluationRow, 'id' | 'flowId' | 'userId'>,
  executionIds: readonly string[],
  log: Logger,
): Promise<void> {
  for (const executionId of executionIds) {
    try {
      await executions.cancel(evaluation.flowId, executionId, evaluation.userId);
    } catch (error) {
      if (error instanceof AppError && (error.status === 404 || error.status === 409)) continue;
      log.warn({ err: error, evaluationId: evaluation.id, executionId }, 'execution of a stopped evaluation not cancelled');
    }
  }
}

/**
 * The run kernel's listener of ended runs (in whichever process ended one): an ended execution of
 * a running evaluation row is queued for scoring. A listener lost with its process is made up for
 * by `EvaluationRunner.recover` (evaluation-runner.ts).
 */
export function scoreEndedExecutions(deps: { repos: Pick<Repositories, 'evals'>; queues: Pick<QueueRegistry, 'enqueue'> }) {
  return async (run: { kind: string; id: string }): Promise<void> => {
    if (run.kind !== 'flow') return;
    const result = await deps.repos.evals.resultByExecution(run.id);
    if (result?.status === 'running')
      await deps.queues.enqueue('flows', 'evaluation-score', { evaluationId: result.evaluationId, executionId: run.id });
  };
}
