import { z } from 'zod';
import { datasetFromExecutionsSchema, datasetRowSchema, uploadDatasetSchema } from '../../evals/datasets';
import { createEvaluationSchema } from '../../evals/evaluations';
import { pageQuerySchema } from '../../lib/pagination';
import { toDatasetView, toEvaluationView, toResultView } from '../../models/evals-repository';
import { uuidParam } from '../../schemas/api';
import { routesWith, type ParamSpec } from '../route';
import type { ApiContext } from '../context';

/** The evaluation routes' port: datasets, evaluations and the plan's feature gate. */
export type EvaluationPorts = Pick<ApiContext, 'datasets' | 'evaluations' | 'limits'>;
const route = routesWith<EvaluationPorts>();

const uuid = (description: string, resource: string) =>
  ({ schema: uuidParam, description: `${description}. A malformed id answers 404, like a missing one.`, resource }) satisfies ParamSpec;
const datasetParam = { id: uuid('Dataset id', 'Dataset') };
const evaluationParam = { id: uuid('Evaluation id', 'Evaluation') };
const pageQuery = pageQuerySchema(50);
/** `GET /evaluations`: a page, optionally of one flow's evaluations only. */
export const evaluationsQuerySchema = pageQuery.extend({
  flowId: z.uuid().optional().describe("Only this flow's evaluations (a flow that is not the caller's lists none)"),
});

const timestamp = z.iso.datetime();
const datasetView = z.object({
  id: z.uuid(),
  name: z.string(),
  source: z.enum(['upload', 'executions']).describe('Uploaded, or made from past executions'),
  rowCount: z.number().int(),
  bytes: z.number().int().describe('The rows as JSON, in characters'),
  createdAt: timestamp,
});
const errorView = z.object({ code: z.string(), message: z.string() }).nullable();
const evaluationView = z.object({
  id: z.uuid(),
  flowId: z.uuid(),
  datasetId: z.uuid(),
  versions: z.array(z.number().int()),
  scorers: z.array(z.record(z.string(), z.unknown())).describe('As given, each with its `name`'),
  concurrency: z.number().int(),
  status: z.enum(['running', 'completed', 'failed', 'cancelled']),
  error: errorView.describe('Why it failed (`budget_exceeded`: the owner’s budget ran out), else null'),
  createdAt: timestamp,
  completedAt: timestamp.nullable(),
});
const scoreView = z.object({ scorer: z.string(), score: z.number(), reason: z.string() });
const resultView = z.object({
  version: z.number().int(),
  position: z.number().int().describe('The dataset row, from 0'),
  status: z.enum(['pending', 'running', 'scored', 'failed', 'cancelled']),
  executionId: z.uuid().nullable().describe('Its flow execution, once started'),
  output: z.unknown().describe("The execution's output once scored"),
  scores: z.array(scoreView),
  score: z.number().nullable().describe('The mean of its scores; 0 for a failed execution'),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number(), costUsd: z.number(), judgeCostUsd: z.number() }),
  latencyMs: z.number().int().nullable().describe('From the execution’s start to its end'),
  error: errorView,
  completedAt: timestamp.nullable(),
});
const versionSummary = z.object({
  version: z.number().int(),
  rows: z.number().int(),
  pending: z.number().int(),
  running: z.number().int(),
  scored: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
  meanScore: z.number().nullable().describe('Over the finished rows (a failed execution counts 0); null before any finished'),
  scorers: z.array(z.object({ scorer: z.string(), meanScore: z.number() })).describe('Each scorer’s mean over the scored rows'),
  costUsd: z.number().describe("The executions' cost"),
  judgeCostUsd: z.number().describe("The LLM judge's cost"),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  latencyMs: z.object({ p50: z.number().nullable(), p95: z.number().nullable(), mean: z.number().nullable() }),
});

const tags = ['evaluations'];
const FLOWS_GATE = 'A plan without flows is 403 `tier_forbidden`.';

/** Datasets and evaluations, declared once (see `../route.ts`): the caller's own only; another user's answers 404. */
export const evaluationRoutes = [
  route({
    method: 'post',
    path: '/evaluations/datasets',
    operationId: 'createEvaluationDataset',
    tags,
    auth: 'bearer',
    summary: 'Upload a dataset: rows of inputs and expected outputs, as JSON rows or CSV',
    description:
      'Exactly one of `rows` (`[{input: {…}, expected?}]`) and `csv` (a header line, then one line per row: the `expected` column is the ' +
      'expected output, every other column an input key). More than `EVAL_MAX_ROWS` rows or `EVAL_MAX_DATASET_BYTES` characters is 413 ' +
      `\`dataset_too_large\`; a malformed CSV is 400 naming its line. Nothing is saved on any refusal. ${FLOWS_GATE}`,
    body: uploadDatasetSchema,
    bodyExample: {
      name: 'Capitals',
      rows: [
        { input: { country: 'France' }, expected: 'Paris' },
        { input: { country: 'Japan' }, expected: 'Tokyo' },
      ],
    },
    responses: { 201: { description: 'The dataset', schema: z.object({ dataset: datasetView }) } },
    errors: [403, 413],
    handler: async (input, ctx) => {
      await ctx.limits.requireFeature(input.user.id, 'flows');
      return { dataset: toDatasetView(await ctx.datasets.upload(input.user.id, input.body)) };
    },
  }),

  route({
    method: 'post',
    path: '/evaluations/datasets/from-executions',
    operationId: 'createEvaluationDatasetFromExecutions',
    tags,
    auth: 'bearer',
    summary: "Make a dataset from a flow's past completed executions (their inputs; their outputs as the expected outputs)",
    description: `The newest \`limit\` completed executions of the caller's flow (of \`version\` only, when given), oldest first. A flow without one is 409 \`no_executions\`. ${FLOWS_GATE}`,
    body: datasetFromExecutionsSchema,
    bodyExample: { name: 'Last week', flowId: '6f1c1c9e-8d0b-4d5e-9a43-0d6f2b1b9a11', limit: 20 },
    responses: { 201: { description: 'The dataset', schema: z.object({ dataset: datasetView }) } },
    errors: [403, 404, 409],
    handler: async (input, ctx) => {
      await ctx.limits.requireFeature(input.user.id, 'flows');
      return { dataset: toDatasetView(await ctx.datasets.fromExecutions(input.user.id, input.body)) };
    },
  }),

  route({
    method: 'get',
    path: '/evaluations/datasets',
    operationId: 'listEvaluationDatasets',
    tags,
    auth: 'bearer',
    summary: "The caller's datasets, newest first, in pages",
    description: '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older ones (null on the last page).',
    query: pageQuery,
    responses: {
      200: { description: 'One page', schema: z.object({ datasets: z.array(datasetView), nextCursor: z.string().nullable() }) },
    },
    handler: async ({ user, query }, ctx) => {
      const page = await ctx.datasets.list(user.id, query);
      return { datasets: page.items.map(toDatasetView), nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'get',
    path: '/evaluations/datasets/:id',
    operationId: 'getEvaluationDataset',
    tags,
    auth: 'bearer',
    summary: 'A dataset with one page of its rows, in order',
    description: '`?limit` 1–200 rows (default 50); pass `nextCursor` as `?cursor` for the next rows (null after the last).',
    params: datasetParam,
    query: pageQuery,
    responses: {
      200: {
        description: 'The dataset and rows',
        schema: z.object({
          dataset: datasetView,
          rows: z.array(datasetRowSchema.extend({ position: z.number().int() })),
          nextCursor: z.string().nullable(),
        }),
      },
    },
    errors: [404],
    handler: async (input, ctx) => {
      // The page asked for is checked first: a bad query is a 400 whatever the dataset.
      const { query } = input;
      const dataset = await ctx.datasets.get(input.user.id, input.params.id);
      const page = await ctx.datasets.rows(input.user.id, dataset.id, query);
      return {
        dataset: toDatasetView(dataset),
        rows: page.items.map((row) => ({ position: row.position, input: row.input, expected: row.expected ?? null })),
        nextCursor: page.nextCursor,
      };
    },
  }),

  route({
    method: 'delete',
    path: '/evaluations/datasets/:id',
    operationId: 'deleteEvaluationDataset',
    tags,
    auth: 'bearer',
    summary: 'Delete a dataset with the evaluations that ran it',
    params: datasetParam,
    responses: { 204: 'Deleted' },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      await ctx.datasets.remove(user.id, params.id);
    },
  }),

  route({
    method: 'post',
    path: '/evaluations',
    operationId: 'createEvaluation',
    tags,
    auth: 'bearer',
    summary: 'Run a dataset against one or several versions of an agentflow, and score every answer',
    description:
      'Each (version, row) pair is a normal flow execution on the `flows` queue, in a background lane: its jobs wait behind every ' +
      "user's own executions, and at most `concurrency` of the evaluation's executions run at once. Each execution's first model call " +
      "is reserved against the caller's budget like any other, and so is each LLM judge call. " +
      'Scorers: `exact` (the answer equals `expected`: text trimmed, JSON by value), `contains` (the answer contains `value` or `expected`), ' +
      '`regex` (`pattern`, `flags` of `imsu`), `json_schema` (the answer, as JSON, validates), each 1 or 0; ' +
      '`llm_judge` (a `rubric`, an optional `model`): the judge model answers a score from 0 to 1 and a reason. ' +
      'A pattern or schema that runs longer than 100 ms on an answer scores it 0. ' +
      'Refused before anything is saved: a flow, dataset or version the caller lacks (404), a chatflow (409 `not_an_agentflow`), ' +
      'a pattern that does not compile or a schema Ajv refuses, a judge model not served (400 naming `scorers.<i>.<field>`), ' +
      'rows lacking an input a version reads (400 `missing_input`, `details: [{row, version, missing}]`), ' +
      `\`EVAL_MAX_RUNNING\` evaluations already running (429 \`too_many_evaluations\`). ${FLOWS_GATE}`,
    body: createEvaluationSchema,
    bodyExample: {
      flowId: '6f1c1c9e-8d0b-4d5e-9a43-0d6f2b1b9a11',
      datasetId: '0b9a3c55-0c1e-4c5e-b0b1-2f1b6c3d4e5f',
      versions: [1, 2],
      scorers: [
        { type: 'contains', caseSensitive: false },
        { type: 'llm_judge', rubric: 'The answer names the capital city, and nothing false.' },
      ],
    },
    responses: { 202: { description: 'Started', schema: z.object({ evaluation: evaluationView }) } },
    errors: [403, 404, 409, 429, 503],
    handler: async (input, ctx) => {
      await ctx.limits.requireFeature(input.user.id, 'flows');
      return { evaluation: toEvaluationView(await ctx.evaluations.create(input.user, input.body)) };
    },
  }),

  route({
    method: 'get',
    path: '/evaluations',
    operationId: 'listEvaluations',
    tags,
    auth: 'bearer',
    summary: "The caller's evaluations, newest first, in pages (of one flow with `?flowId`)",
    description:
      '`?limit` 1–200 (default 50); pass `nextCursor` as `?cursor` for older ones (null on the last page); `?flowId` keeps one flow’s only.',
    query: evaluationsQuerySchema,
    responses: {
      200: { description: 'One page', schema: z.object({ evaluations: z.array(evaluationView), nextCursor: z.string().nullable() }) },
    },
    handler: async ({ user, query }, ctx) => {
      const page = await ctx.evaluations.list(user.id, query);
      return { evaluations: page.items.map(toEvaluationView), nextCursor: page.nextCursor };
    },
  }),

  route({
    method: 'get',
    path: '/evaluations/:id',
    operationId: 'getEvaluation',
    tags,
    auth: 'bearer',
    summary: 'An evaluation with every result (each row of each version: its status, output, scores, usage and latency)',
    params: evaluationParam,
    responses: {
      200: { description: 'The evaluation', schema: z.object({ evaluation: evaluationView, results: z.array(resultView) }) },
    },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const { evaluation, results } = await ctx.evaluations.results(user.id, params.id);
      return { evaluation: toEvaluationView(evaluation), results: results.map(toResultView) };
    },
  }),

  route({
    method: 'get',
    path: '/evaluations/:id/comparison',
    operationId: 'compareEvaluationVersions',
    tags,
    auth: 'bearer',
    summary: 'The versions side by side: mean score (overall and per scorer), cost, and latency p50/p95',
    description:
      'Figures cover the rows finished so far (read it again while the evaluation runs). `best` names the version with the highest mean score, ' +
      'the lowest cost per finished row and the lowest p95 latency (null while none has one).',
    params: evaluationParam,
    responses: {
      200: {
        description: 'The comparison',
        schema: z.object({
          evaluation: evaluationView,
          versions: z.array(versionSummary),
          best: z.object({
            score: z.number().int().nullable(),
            costUsd: z.number().int().nullable(),
            latencyP95Ms: z.number().int().nullable(),
          }),
        }),
      },
    },
    errors: [404],
    handler: async ({ user, params }, ctx) => {
      const { evaluation, versions, best } = await ctx.evaluations.comparison(user.id, params.id);
      return { evaluation: toEvaluationView(evaluation), versions, best };
    },
  }),

  route({
    method: 'post',
    path: '/evaluations/:id/cancel',
    operationId: 'cancelEvaluation',
    tags,
    auth: 'bearer',
    summary: 'Stop an evaluation: rows not started never run, running executions are cancelled',
    description: 'While running: 202, and the rows not finished become `cancelled`. Once ended: 409 `not_running`.',
    params: evaluationParam,
    responses: {
      202: { description: 'Cancelled', schema: z.object({ evaluationId: z.uuid(), status: z.literal('cancelled') }) },
    },
    errors: [404, 409],
    handler: async ({ user, params }, ctx) => ctx.evaluations.cancel(user.id, params.id),
  }),
];
