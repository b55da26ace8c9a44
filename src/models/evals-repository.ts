import { and, asc, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import type { Db } from './database';
import { rowsOf } from './migrate';
import {
  evalDatasetRows,
  evalDatasets,
  evaluationResults,
  evaluations,
  flowExecutions,
  type EvalDatasetRow,
  type EvalDatasetRowRow,
  type EvaluationResultRow,
  type EvaluationRow,
} from './schema';

/** Rows inserted per statement (a statement's parameters are bounded). */
const INSERT_BATCH = 500;

/** A claimed result: the row of the dataset it runs and the id its execution starts under. */
export interface ClaimedResult {
  version: number;
  position: number;
  executionId: string;
}

/** One version's figures in an evaluation (`GET /evaluations/:id/comparison`). */
export interface VersionSummary {
  version: number;
  rows: number;
  pending: number;
  running: number;
  scored: number;
  failed: number;
  cancelled: number;
  /** The mean score of the finished answers (a failed execution's answer counts 0); null before any finished. */
  meanScore: number | null;
  /** Each scorer's mean over the finished answers. */
  scorers: Array<{ scorer: string; meanScore: number }>;
  costUsd: number;
  judgeCostUsd: number;
  inputTokens: number;
  outputTokens: number;
  latencyMs: { p50: number | null; p95: number | null; mean: number | null };
}

/** What a finished result records. */
export interface ResultOutcome {
  status: 'scored' | 'failed';
  output?: unknown;
  scores?: Array<{ scorer: string; score: number; reason: string }>;
  score: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  judgeCostUsd: number;
  latencyMs: number | null;
  errorCode?: string;
  errorMessage?: string;
}

/** The public view of a dataset. */
export function toDatasetView(row: EvalDatasetRow) {
  return {
    id: row.id,
    name: row.name,
    source: row.source,
    rowCount: row.rowCount,
    bytes: row.bytes,
    createdAt: row.createdAt.toISOString(),
  };
}

/** The public view of an evaluation. */
export function toEvaluationView(row: EvaluationRow) {
  return {
    id: row.id,
    flowId: row.flowId,
    datasetId: row.datasetId,
    versions: row.versions,
    scorers: row.scorers,
    concurrency: row.concurrency,
    status: row.status,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '' } : null,
    createdAt: row.createdAt.toISOString(),
    completedAt: row.completedAt?.toISOString() ?? null,
  };
}

/** The public view of one result. */
export function toResultView(row: EvaluationResultRow) {
  return {
    version: row.version,
    position: row.position,
    status: row.status,
    executionId: row.executionId,
    output: row.output ?? null,
    scores: row.scores ?? [],
    score: row.score,
    usage: { inputTokens: row.inputTokens, outputTokens: row.outputTokens, costUsd: row.costUsd, judgeCostUsd: row.judgeCostUsd },
    latencyMs: row.latencyMs,
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? '' } : null,
    completedAt: row.completedAt?.toISOString() ?? null,
  };
}

/**
 * Datasets and evaluations. Every move of a result is one conditional UPDATE (claimed from
 * `pending`, finished from `running` with the execution id it was claimed with), so a retried or
 * doubled job cannot finish a row twice; totals are aggregates over the rows.
 */
export class EvalsRepository {
  constructor(private readonly db: Db) {}

  /* ---- datasets ---- */

  async createDataset(input: {
    userId: string;
    name: string;
    source: EvalDatasetRow['source'];
    bytes: number;
    rows: Array<{ input: Record<string, unknown>; expected: unknown }>;
  }): Promise<EvalDatasetRow> {
    return this.db.transaction(async (tx) => {
      const [dataset] = await tx
        .insert(evalDatasets)
        .values({ userId: input.userId, name: input.name, source: input.source, rowCount: input.rows.length, bytes: input.bytes })
        .returning();
      for (let at = 0; at < input.rows.length; at += INSERT_BATCH) {
        await tx.insert(evalDatasetRows).values(
          input.rows.slice(at, at + INSERT_BATCH).map((row, i) => ({
            datasetId: dataset.id,
            position: at + i,
            input: row.input,
            expected: row.expected ?? null,
          })),
        );
      }
      return dataset;
    });
  }

  /** The user's dataset, else null (another user's included). */
  async dataset(userId: string, id: string): Promise<EvalDatasetRow | null> {
    const rows = await this.db
      .select()
      .from(evalDatasets)
      .where(and(eq(evalDatasets.id, id), eq(evalDatasets.userId, userId)))
      .limit(1);
    return rows[0] ?? null;
  }

  async listDatasets(userId: string, options: { limit: number; after?: { at: Date; id: string } }): Promise<EvalDatasetRow[]> {
    const { after } = options;
    const page = after
      ? or(lt(evalDatasets.createdAt, after.at), and(eq(evalDatasets.createdAt, after.at), lt(evalDatasets.id, after.id)))
      : undefined;
    return this.db
      .select()
      .from(evalDatasets)
      .where(and(eq(evalDatasets.userId, userId), page))
      .orderBy(desc(evalDatasets.createdAt), desc(evalDatasets.id))
      .limit(options.limit);
  }

  /** A dataset's rows from `from` on, in order. */
  async datasetRows(datasetId: string, options: { from?: number; limit?: number } = {}): Promise<EvalDatasetRowRow[]> {
    const query = this.db
      .select()
      .from(evalDatasetRows)
      .where(and(eq(evalDatasetRows.datasetId, datasetId), sql`${evalDatasetRows.position} >= ${options.from ?? 0}`))
      .orderBy(asc(evalDatasetRows.position));
    return options.limit === undefined ? query : query.limit(options.limit);
  }

  async datasetRow(datasetId: string, position: number): Promise<EvalDatasetRowRow | null> {
    const rows = await this.db
      .select()
      .from(evalDatasetRows)
      .where(and(eq(evalDatasetRows.datasetId, datasetId), eq(evalDatasetRows.position, position)))
      .limit(1);
    return rows[0] ?? null;
  }

  async removeDataset(userId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .delete(evalDatasets)
      .where(and(eq(evalDatasets.id, id), eq(evalDatasets.userId, userId)))
      .returning({ id: evalDatasets.id });
    return rows.length > 0;
  }

  /** A flow's completed executions, newest first (optionally of one version): the rows a dataset is made from. */
  async completedExecutions(flowId: string, options: { limit: number; version?: number }) {
    return this.db
      .select({ input: flowExecutions.input, output: flowExecutions.output })
      .from(flowExecutions)
      .where(
        and(
          eq(flowExecutions.flowId, flowId),
          eq(flowExecutions.status, 'completed'),
          options.version === undefined ? undefined : eq(flowExecutions.flowVersion, options.version),
        ),
      )
      .orderBy(desc(flowExecutions.createdAt), desc(flowExecutions.id))
      .limit(options.limit);
  }

  /* ---- evaluations ---- */

  /** The user's evaluations still running. */
  async countRunning(userId: string): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(evaluations)
      .where(and(eq(evaluations.userId, userId), eq(evaluations.status, 'running')));
    return row?.n ?? 0;
  }

  /** The evaluation and one pending result per (version, dataset row), in one transaction. */
  async createEvaluation(input: {
    id: string;
    userId: string;
    flowId: string;
    datasetId: string;
    versions: number[];
    scorers: unknown[];
    tier: EvaluationRow['tier'];
    concurrency: number;
  }): Promise<EvaluationRow> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.insert(evaluations).values(input).returning();
      for (const version of input.versions) {
        await tx.execute(sql`
          insert into evaluation_results (evaluation_id, version, position)
          select ${input.id}, ${version}, position from eval_dataset_rows where dataset_id = ${input.datasetId}`);
      }
      return row;
    });
  }

  async find(id: string): Promise<EvaluationRow | null> {
    const rows = await this.db.select().from(evaluations).where(eq(evaluations.id, id)).limit(1);
    return rows[0] ?? null;
  }

  /** The user's evaluation, else null. */
  async evaluation(userId: string, id: string): Promise<EvaluationRow | null> {
    const rows = await this.db
      .select()
      .from(evaluations)
      .where(and(eq(evaluations.id, id), eq(evaluations.userId, userId)))
      .limit(1);
    return rows[0] ?? null;
  }

  async listEvaluations(
    userId: string,
    options: { limit: number; after?: { at: Date; id: string }; flowId?: string },
  ): Promise<EvaluationRow[]> {
    const { after } = options;
    const page = after
      ? or(lt(evaluations.createdAt, after.at), and(eq(evaluations.createdAt, after.at), lt(evaluations.id, after.id)))
      : undefined;
    return this.db
      .select()
      .from(evaluations)
      .where(and(eq(evaluations.userId, userId), options.flowId ? eq(evaluations.flowId, options.flowId) : undefined, page))
      .orderBy(desc(evaluations.createdAt), desc(evaluations.id))
      .limit(options.limit);
  }

  /** Every result of an evaluation, by row then version. */
  async results(evaluationId: string): Promise<EvaluationResultRow[]> {
    return this.db
      .select()
      .from(evaluationResults)
      .where(eq(evaluationResults.evaluationId, evaluationId))
      .orderBy(asc(evaluationResults.position), asc(evaluationResults.version));
  }

  async resultByExecution(executionId: string): Promise<EvaluationResultRow | null> {
    const rows = await this.db.select().from(evaluationResults).where(eq(evaluationResults.executionId, executionId)).limit(1);
    return rows[0] ?? null;
  }

  /**
   * Claims pending results of a running evaluation up to its concurrency (the evaluation's row is
   * locked, so two claimers never exceed it): each becomes `running` with a new execution id,
   * committed before its execution is started under that id.
   */
  async claim(evaluationId: string): Promise<ClaimedResult[]> {
    return this.db.transaction(async (tx) => {
      const locked = rowsOf<{ concurrency: number }>(
        await tx.execute(sql`select concurrency from evaluations where id = ${evaluationId} and status = 'running' for update`),
      );
      if (!locked.length) return [];
      const [{ running }] = rowsOf<{ running: number }>(
        await tx.execute(
          sql`select count(*)::int as running from evaluation_results where evaluation_id = ${evaluationId} and status = 'running'`,
        ),
      );
      const room = locked[0].concurrency - running;
      if (room <= 0) return [];
      const claimed = rowsOf<{ version: number; position: number; execution_id: string }>(
        await tx.execute(sql`
          update evaluation_results r set status = 'running', execution_id = gen_random_uuid(), claimed_at = now()
          from (
            select version, position from evaluation_results
            where evaluation_id = ${evaluationId} and status = 'pending'
            order by position, version limit ${room}
          ) next
          where r.evaluation_id = ${evaluationId} and r.version = next.version and r.position = next.position and r.status = 'pending'
          returning r.version, r.position, r.execution_id`),
      );
      return claimed
        .map((row) => ({ version: row.version, position: row.position, executionId: row.execution_id }))
        .sort((a, b) => a.position - b.position || a.version - b.version);
    });
  }

  /** The running results of an evaluation. */
  async running(evaluationId: string): Promise<EvaluationResultRow[]> {
    return this.db
      .select()
      .from(evaluationResults)
      .where(and(eq(evaluationResults.evaluationId, evaluationId), eq(evaluationResults.status, 'running')));
  }

  /** Finishes a running result claimed with `executionId`: false when it was finished (or cancelled) already. */
  async finishResult(evaluationId: string, executionId: string, outcome: ResultOutcome): Promise<boolean> {
    const rows = await this.db
      .update(evaluationResults)
      .set({
        status: outcome.status,
        output: outcome.output ?? null,
        scores: outcome.scores ?? [],
        score: outcome.score,
        inputTokens: outcome.inputTokens,
        outputTokens: outcome.outputTokens,
        costUsd: outcome.costUsd,
        judgeCostUsd: outcome.judgeCostUsd,
        latencyMs: outcome.latencyMs,
        errorCode: outcome.errorCode ?? null,
        errorMessage: outcome.errorMessage ?? null,
        completedAt: new Date(),
      })
      .where(
        and(
          eq(evaluationResults.evaluationId, evaluationId),
          eq(evaluationResults.executionId, executionId),
          eq(evaluationResults.status, 'running'),
        ),
      )
      .returning({ position: evaluationResults.position });
    return rows.length > 0;
  }

  /** Completes a running evaluation once no result is pending or running: false otherwise. */
  async complete(evaluationId: string): Promise<boolean> {
    const rows = rowsOf<{ id: string }>(
      await this.db.execute(sql`
        update evaluations set status = 'completed', completed_at = now()
        where id = ${evaluationId} and status = 'running'
          and not exists (select 1 from evaluation_results where evaluation_id = ${evaluationId} and status in ('pending', 'running'))
        returning id`),
    );
    return rows.length > 0;
  }

  /**
   * Ends a running evaluation `failed` or `cancelled`: its pending and running results become
   * `cancelled`, in the same transaction. Returns the executions of the results that were running
   * (their owner's cancel stops them), or null when it was not running.
   */
  async stop(
    evaluationId: string,
    outcome: { status: 'failed' | 'cancelled'; errorCode?: string; errorMessage?: string },
  ): Promise<string[] | null> {
    return this.db.transaction(async (tx) => {
      const ended = await tx
        .update(evaluations)
        .set({
          status: outcome.status,
          errorCode: outcome.errorCode ?? null,
          errorMessage: outcome.errorMessage ?? null,
          completedAt: new Date(),
        })
        .where(and(eq(evaluations.id, evaluationId), eq(evaluations.status, 'running')))
        .returning({ id: evaluations.id });
      if (!ended.length) return null;
      const running = await tx
        .update(evaluationResults)
        .set({ status: 'cancelled', completedAt: new Date() })
        .where(and(eq(evaluationResults.evaluationId, evaluationId), inArray(evaluationResults.status, ['pending', 'running'])))
        .returning({ executionId: evaluationResults.executionId, status: evaluationResults.status });
      return running.flatMap((row) => (row.executionId ? [row.executionId] : []));
    });
  }

  /**
   * Running evaluations that look stuck as of `before`: a result claimed before it whose execution
   * is missing or has ended, or pending results with no result running (the job that would have
   * advanced it was lost with its worker).
   */
  async stuck(before: Date, limit: number): Promise<string[]> {
    const rows = rowsOf<{ id: string }>(
      await this.db.execute(sql`
        select e.id from evaluations e
        where e.status = 'running' and e.created_at < ${before}
          and (
            exists (
              select 1 from evaluation_results r left join flow_executions x on x.id = r.execution_id
              where r.evaluation_id = e.id and r.status = 'running' and r.claimed_at < ${before}
                and (x.id is null or x.status not in ('queued', 'running'))
            )
            or (
              not exists (select 1 from evaluation_results r where r.evaluation_id = e.id and r.status = 'running')
            )
          )
        order by e.created_at
        limit ${limit}`),
    );
    return rows.map((row) => row.id);
  }

  /** Per version: counts by status, scores, cost and latency percentiles. */
  async summary(evaluationId: string): Promise<VersionSummary[]> {
    const totals = rowsOf<{
      version: number;
      rows: number;
      pending: number;
      running: number;
      scored: number;
      failed: number;
      cancelled: number;
      mean_score: number | null;
      cost_usd: number;
      judge_cost_usd: number;
      input_tokens: number;
      output_tokens: number;
      p50: number | null;
      p95: number | null;
      mean_latency: number | null;
    }>(
      await this.db.execute(sql`
        select version,
          count(*)::int as rows,
          count(*) filter (where status = 'pending')::int as pending,
          count(*) filter (where status = 'running')::int as running,
          count(*) filter (where status = 'scored')::int as scored,
          count(*) filter (where status = 'failed')::int as failed,
          count(*) filter (where status = 'cancelled')::int as cancelled,
          avg(score) filter (where status in ('scored', 'failed'))::float8 as mean_score,
          coalesce(sum(cost_usd), 0)::float8 as cost_usd,
          coalesce(sum(judge_cost_usd), 0)::float8 as judge_cost_usd,
          coalesce(sum(input_tokens), 0)::int as input_tokens,
          coalesce(sum(output_tokens), 0)::int as output_tokens,
          percentile_cont(0.5) within group (order by latency_ms) filter (where latency_ms is not null)::float8 as p50,
          percentile_cont(0.95) within group (order by latency_ms) filter (where latency_ms is not null)::float8 as p95,
          avg(latency_ms) filter (where latency_ms is not null)::float8 as mean_latency
        from evaluation_results where evaluation_id = ${evaluationId}
        group by version order by version`),
    );
    const byScorer = rowsOf<{ version: number; scorer: string; mean: number }>(
      await this.db.execute(sql`
        select r.version, s.value->>'scorer' as scorer, avg((s.value->>'score')::float8)::float8 as mean
        from evaluation_results r, jsonb_array_elements(coalesce(r.scores, '[]'::jsonb)) with ordinality as s(value, ord)
        where r.evaluation_id = ${evaluationId} and r.status = 'scored'
        group by r.version, s.value->>'scorer', s.ord order by r.version, s.ord`),
    );
    return totals.map((row) => ({
      version: row.version,
      rows: row.rows,
      pending: row.pending,
      running: row.running,
      scored: row.scored,
      failed: row.failed,
      cancelled: row.cancelled,
      meanScore: row.mean_score === null ? null : Number(row.mean_score),
      scorers: byScorer.filter((s) => s.version === row.version).map((s) => ({ scorer: s.scorer, meanScore: Number(s.mean) })),
      costUsd: Number(row.cost_usd),
      judgeCostUsd: Number(row.judge_cost_usd),
      inputTokens: row.input_tokens,
      outputTokens: row.output_tokens,
      latencyMs: {
        p50: row.p50 === null ? null : Number(row.p50),
        p95: row.p95 === null ? null : Number(row.p95),
        mean: row.mean_latency === null ? null : Number(row.mean_latency),
      },
    }));
  }
}
