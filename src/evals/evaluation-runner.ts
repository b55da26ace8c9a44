import type { ModelGateway } from '../ai/model-gateway';
import { BudgetExceededError } from '../budget/budget-door';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Repositories } from '../models';
import type { ClaimedResult, ResultOutcome } from '../models/evals-repository';
import type { EvaluationRow, FlowExecutionRow } from '../models/schema';
import { evaluationScoreJobId } from '../producers/evaluations';
import type { QueueRegistry } from '../producers/registry';
import type { FlowExecutions } from '../flows/flow-executions';
import { cancelExecutions } from './evaluations';
import { judge } from './judge';
import { ruleScore, type Sample, type Score, type Scorer } from './scorers';

/** Stuck evaluations looked at per sweep. */
const RECOVER_BATCH = 50;

export interface EvaluationRunnerDeps {
  repos: Pick<Repositories, 'evals' | 'flows' | 'flowExecutions'>;
  /** Starts each row's execution (as the evaluation's owner) and cancels them when it stops. */
  executions: Pick<FlowExecutions, 'start' | 'cancel'>;
  /** The LLM judge's calls, each reserved against the owner's budget by the gateway. */
  models: Pick<ModelGateway, 'streamTurn'>;
  queues: Pick<QueueRegistry, 'enqueue' | 'isLive' | 'remove'>;
  logger: Logger;
}

const ended = (status: FlowExecutionRow['status']) => status !== 'queued' && status !== 'running';
const isUniqueViolation = (error: unknown) =>
  (error as { code?: string; cause?: { code?: string } }).code === '23505' ||
  (error as { cause?: { code?: string } }).cause?.code === '23505';

/**
 * The worker side of an evaluation. `advance` claims pending rows up to the evaluation's
 * concurrency and starts each as a normal flow execution, under the id the claim committed; the
 * end of an execution (heard by the run kernel's listener) queues `score`, which scores the answer,
 * finishes the row in one conditional UPDATE and advances again. `recover` (the reaper) picks up
 * what a killed worker left: a claimed row whose execution never started is started under its id,
 * an ended execution never scored is scored; nothing is run or counted twice.
 */
export class EvaluationRunner {
  private readonly log: Logger;

  constructor(private readonly deps: EvaluationRunnerDeps) {
    this.log = deps.logger.child({ component: 'evaluations' });
  }

  /** Starts rows while the evaluation has room, then completes it once no row is left. */
  async advance(evaluationId: string): Promise<void> {
    const { repos } = this.deps;
    const evaluation = await repos.evals.find(evaluationId);
    if (!evaluation || evaluation.status !== 'running') return;
    for (;;) {
      const claimed = await repos.evals.claim(evaluation.id);
      if (!claimed.length) break;
      let freed = false;
      for (const row of claimed) {
        const outcome = await this.start(evaluation, row);
        if (outcome === 'stopped') return;
        if (outcome === 'failed') freed = true;
      }
      // A row refused at its start made room for another.
      if (!freed) break;
    }
    if (await repos.evals.complete(evaluation.id)) this.log.info({ evaluationId }, 'evaluation completed');
  }

  /** Starts the execution of a claimed row under its id; a row whose execution exists already is left to it. */
  private async start(evaluation: EvaluationRow, row: ClaimedResult): Promise<'started' | 'failed' | 'stopped'> {
    const { repos } = this.deps;
    const existing = await repos.flowExecutions.find(row.executionId);
    if (existing) {
      if (ended(existing.status)) await this.queueScore(evaluation.id, row.executionId);
      return 'started';
    }
    const fail = async (code: string, message: string) => {
      await repos.evals.finishResult(evaluation.id, row.executionId, {
        ...NOTHING,
        status: 'failed',
        errorCode: code,
        errorMessage: message,
      });
      return 'failed' as const;
    };
    const [flow, version, data] = await Promise.all([
      repos.flows.get(evaluation.userId, evaluation.flowId),
      repos.flows.version(evaluation.flowId, row.version),
      repos.evals.datasetRow(evaluation.datasetId, row.position),
    ]);
    if (!flow || !version) return fail('version_missing', `The flow has no version ${row.version} any more`);
    if (!data) return fail('row_missing', `The dataset has no row ${row.position} any more`);
    try {
      await this.deps.executions.start(
        { id: evaluation.userId, tier: evaluation.tier },
        { ...flow, definition: version.definition, publishedVersion: version.version },
        data.input,
        { executionId: row.executionId, lane: 'evaluation' },
      );
    } catch (error) {
      if (error instanceof BudgetExceededError) {
        await this.stop(evaluation, 'budget_exceeded', error.message);
        return 'stopped';
      }
      // Queues or the database unavailable: the job retries, and the row (claimed, never started) is started then.
      if (error instanceof AppError && error.status < 500) return fail(error.code, error.message);
      // Started by a process that died before its job ended: it runs.
      if (isUniqueViolation(error)) return 'started';
      throw error;
    }
    // Cancelled while this row was starting: its execution is cancelled too.
    const now = await repos.evals.find(evaluation.id);
    if (now?.status !== 'running') await cancelExecutions(this.deps.executions, evaluation, [row.executionId], this.log);
    return 'started';
  }

  /** Ends a running evaluation `failed` (a spent budget): no row is started any more, and those running are cancelled. */
  private async stop(evaluation: EvaluationRow, code: string, message: string): Promise<void> {
    const running = await this.deps.repos.evals.stop(evaluation.id, { status: 'failed', errorCode: code, errorMessage: message });
    if (running) await cancelExecutions(this.deps.executions, evaluation, running, this.log);
    this.log.info({ evaluationId: evaluation.id, code }, 'evaluation failed');
  }

  private async queueScore(evaluationId: string, executionId: string): Promise<void> {
    await this.deps.queues.enqueue('flows', 'evaluation-score', { evaluationId, executionId });
  }

  /**
   * Scores the answer of an ended execution and finishes its row (once: a second scoring finds it
   * finished and writes nothing), then advances the evaluation. A failed or cancelled execution's
   * row fails with score 0.
   */
  async score(evaluationId: string, executionId: string): Promise<void> {
    const { repos } = this.deps;
    const [result, evaluation, execution] = await Promise.all([
      repos.evals.resultByExecution(executionId),
      repos.evals.find(evaluationId),
      repos.flowExecutions.find(executionId),
    ]);
    if (!result || result.evaluationId !== evaluationId || result.status !== 'running') return;
    if (!evaluation || evaluation.status !== 'running' || !execution || !ended(execution.status)) return;
    const spent = {
      inputTokens: execution.inputTokens,
      outputTokens: execution.outputTokens,
      costUsd: execution.costUsd,
      latencyMs: execution.completedAt
        ? Math.max(0, execution.completedAt.getTime() - (execution.startedAt ?? execution.createdAt).getTime())
        : null,
    };
    let outcome: ResultOutcome;
    if (execution.status === 'completed') {
      const row = await repos.evals.datasetRow(evaluation.datasetId, result.position);
      const sample: Sample = { input: row?.input ?? {}, expected: row?.expected ?? null, output: execution.output ?? null };
      const scored = await this.scoresOf(evaluation, sample);
      if (!scored) return;
      const score = scored.scores.reduce((sum, one) => sum + one.score, 0) / scored.scores.length;
      outcome = { status: 'scored', output: sample.output, scores: scored.scores, score, judgeCostUsd: scored.judgeCostUsd, ...spent };
    } else {
      outcome = {
        status: 'failed',
        score: 0,
        judgeCostUsd: 0,
        errorCode: execution.errorCode ?? execution.status,
        errorMessage: execution.errorMessage ?? `The execution was ${execution.status}`,
        ...spent,
      };
    }
    if (await repos.evals.finishResult(evaluationId, executionId, outcome))
      this.log.info(
        { evaluationId, executionId, version: result.version, row: result.position, score: outcome.score },
        'evaluation row scored',
      );
    await this.advance(evaluationId);
  }

  /** Each scorer's score, in order; null when the judge's budget ran out (the evaluation is stopped). */
  private async scoresOf(evaluation: EvaluationRow, sample: Sample): Promise<{ scores: Score[]; judgeCostUsd: number } | null> {
    const scores: Score[] = [];
    let judgeCostUsd = 0;
    for (const scorer of evaluation.scorers as Scorer[]) {
      if (scorer.type !== 'llm_judge') {
        scores.push(ruleScore(scorer, sample));
        continue;
      }
      try {
        const verdict = await judge(this.deps.models, scorer, sample, { userId: evaluation.userId, tier: evaluation.tier });
        scores.push(verdict.score);
        judgeCostUsd += verdict.costUsd;
      } catch (error) {
        if (!(error instanceof BudgetExceededError)) throw error;
        await this.stop(evaluation, 'budget_exceeded', error.message);
        return null;
      }
    }
    return { scores, judgeCostUsd };
  }

  /**
   * The reaper's sweep: evaluations stuck as of `before` (a claimed row whose execution never
   * started or ended unscored, or rows waiting with none running) are taken up again. How many.
   */
  async recover(before: Date): Promise<number> {
    const { repos, queues } = this.deps;
    const ids = await repos.evals.stuck(before, RECOVER_BATCH);
    for (const id of ids) {
      for (const result of await repos.evals.running(id)) {
        if (!result.executionId || (result.claimedAt && result.claimedAt > before)) continue;
        const execution = await repos.flowExecutions.find(result.executionId);
        if (execution && !ended(execution.status)) continue;
        const jobId = evaluationScoreJobId(result.executionId);
        if (execution) {
          if (await queues.isLive('flows', jobId)) continue;
          // A failed job under this id would make the add a no-op.
          await queues.remove('flows', jobId);
          await this.queueScore(id, result.executionId);
        }
      }
      // Starts the claimed rows whose execution never started (under their ids), and claims more.
      await this.restartClaimed(id, before);
      await queues.enqueue('flows', 'evaluation-advance', { evaluationId: id });
    }
    if (ids.length) this.log.warn({ evaluations: ids.length }, 'stuck evaluations taken up again');
    return ids.length;
  }

  /** Starts the rows of an evaluation claimed before `before` whose execution does not exist. */
  private async restartClaimed(evaluationId: string, before: Date): Promise<void> {
    const evaluation = await this.deps.repos.evals.find(evaluationId);
    if (!evaluation || evaluation.status !== 'running') return;
    for (const result of await this.deps.repos.evals.running(evaluationId)) {
      if (!result.executionId || !result.claimedAt || result.claimedAt > before) continue;
      if (await this.deps.repos.flowExecutions.find(result.executionId)) continue;
      await this.start(evaluation, { version: result.version, position: result.position, executionId: result.executionId });
    }
  }
}

/** A row that failed before its execution ran: nothing spent, score 0. */
const NOTHING: Omit<ResultOutcome, 'status'> = { score: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, judgeCostUsd: 0, latencyMs: null };
