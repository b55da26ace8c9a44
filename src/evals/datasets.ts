import { z } from 'zod';
import type { Config } from '../../config';
import { AppError, conflict, notFound } from '../lib/errors';
import { decodeCursor, pageOf, PG_INTEGER_MAX, positiveIntKey, timeIdKey } from '../lib/pagination';
import type { Repositories } from '../models';
import type { EvalDatasetRow, EvalDatasetRowRow } from '../models/schema';
import { INPUT_KEY_PATTERN, MAX_DEFINITION_DEPTH, tooDeep } from '../flows/definition';
import { parseCsv } from './csv';

/** The CSV column that holds a row's expected output; every other column is an input key. */
export const EXPECTED_COLUMN = 'expected';

const datasetName = z.string().trim().min(1).max(200);
export const datasetRowSchema = z.strictObject({
  input: z.record(z.string(), z.unknown()).describe("The flow's input: the values of its `{{input.<key>}}` templates"),
  expected: z.unknown().optional().describe('The expected output (text or any JSON value); scorers compare the answer with it'),
});

export const uploadDatasetSchema = z
  .strictObject({
    name: datasetName,
    rows: z.array(datasetRowSchema).min(1).optional().describe('The rows as JSON'),
    csv: z
      .string()
      .min(1)
      .optional()
      .describe(
        `The rows as CSV text: a header line, then one line per row. The \`${EXPECTED_COLUMN}\` column is the expected output; every other column is an input key (its values are text).`,
      ),
  })
  .refine((body) => (body.rows === undefined) !== (body.csv === undefined), {
    message: 'Give exactly one of `rows` and `csv`',
    path: ['rows'],
  });

export const datasetFromExecutionsSchema = z.strictObject({
  name: datasetName,
  flowId: z.uuid(),
  version: z.number().int().positive().optional().describe('Only executions of this version (default: any)'),
  limit: z.number().int().min(1).default(50).describe("The newest completed executions taken (at most the deployment's row cap)"),
});

type DatasetRowInput = { input: Record<string, unknown>; expected: unknown };

/** A `[position]` cursor key. */
const positionKey = positiveIntKey(PG_INTEGER_MAX);

/**
 * Evaluation datasets, always as their owner (another user's dataset is a 404): uploaded as JSON
 * rows or CSV, or made from a flow's past completed executions (their inputs, and their outputs as
 * the expected outputs). Rows and size are capped (`EVAL_MAX_ROWS`, `EVAL_MAX_DATASET_BYTES`):
 * past either the upload is refused (413 `dataset_too_large`) and nothing is saved.
 */
export class Datasets {
  constructor(private readonly deps: { repos: Pick<Repositories, 'evals' | 'flows'>; config: Pick<Config, 'evals'> }) {}

  async upload(userId: string, body: z.output<typeof uploadDatasetSchema>): Promise<EvalDatasetRow> {
    const { maxDatasetBytes } = this.deps.config.evals;
    if (body.csv !== undefined && body.csv.length > maxDatasetBytes) throw this.tooLarge(`${body.csv.length} characters of CSV`);
    const rows = body.rows ? body.rows.map((row) => ({ input: row.input, expected: row.expected ?? null })) : this.fromCsv(body.csv!);
    return this.save(userId, body.name, 'upload', rows);
  }

  async fromExecutions(userId: string, body: z.output<typeof datasetFromExecutionsSchema>): Promise<EvalDatasetRow> {
    const flow = await this.deps.repos.flows.get(userId, body.flowId);
    if (!flow) throw notFound('Flow');
    const limit = Math.min(body.limit, this.deps.config.evals.maxRows);
    const executions = await this.deps.repos.evals.completedExecutions(flow.id, { limit, version: body.version });
    if (!executions.length)
      throw conflict(
        'no_executions',
        `The flow has no completed execution${body.version === undefined ? '' : ` of version ${body.version}`}`,
      );
    return this.save(
      userId,
      body.name,
      'executions',
      // Oldest first, as they ran.
      executions.reverse().map((execution) => ({ input: execution.input, expected: execution.output ?? null })),
    );
  }

  private async save(userId: string, name: string, source: EvalDatasetRow['source'], rows: DatasetRowInput[]): Promise<EvalDatasetRow> {
    const { maxRows, maxDatasetBytes } = this.deps.config.evals;
    if (rows.length > maxRows) throw this.tooLarge(`${rows.length} rows`);
    const bytes = JSON.stringify(rows).length;
    if (bytes > maxDatasetBytes) throw this.tooLarge(`${bytes} characters of JSON`);
    rows.forEach((row, index) => {
      const deep = tooDeep(row, MAX_DEFINITION_DEPTH);
      if (deep)
        throw new AppError(400, 'validation_failed', 'Invalid request body', [
          { path: ['rows', index, ...deep].map(String).join('.'), message: `nested more than ${MAX_DEFINITION_DEPTH} levels deep` },
        ]);
    });
    return this.deps.repos.evals.createDataset({ userId, name, source, bytes, rows });
  }

  private tooLarge(what: string): AppError {
    const { maxRows, maxDatasetBytes } = this.deps.config.evals;
    return new AppError(413, 'dataset_too_large', `The dataset is ${what}; at most ${maxRows} rows and ${maxDatasetBytes} characters`, {
      maxRows,
      maxBytes: maxDatasetBytes,
    });
  }

  /** CSV rows: a header of unique column names (input keys, and `expected`), then one line per row. */
  private fromCsv(text: string): DatasetRowInput[] {
    const parsed = parseCsv(text);
    const problem = (path: string, message: string) =>
      new AppError(400, 'validation_failed', `Invalid CSV: ${message}`, [{ path, message }]);
    if (!parsed.ok) throw problem('csv', `line ${parsed.line}: ${parsed.message}`);
    const [header, ...lines] = parsed.rows;
    if (!header || !lines.length) throw problem('csv', 'a header line and at least one row are needed');
    const columns = header.map((name) => name.trim());
    const seen = new Set<string>();
    for (const column of columns) {
      if (column !== EXPECTED_COLUMN && !INPUT_KEY_PATTERN.test(column))
        throw problem('csv', `column "${column}" is not an input key (1 to 64 letters, digits, _ or -)`);
      if (seen.has(column)) throw problem('csv', `column "${column}" appears twice`);
      seen.add(column);
    }
    if (!columns.some((column) => column !== EXPECTED_COLUMN)) throw problem('csv', 'no input column');
    if (lines.length > this.deps.config.evals.maxRows) throw this.tooLarge(`${lines.length} rows`);
    return lines.map((fields, index) => {
      if (fields.length !== columns.length)
        throw problem('csv', `row ${index + 1} has ${fields.length} fields; the header has ${columns.length}`);
      const input: Record<string, unknown> = {};
      let expected: unknown = null;
      columns.forEach((column, at) => {
        if (column === EXPECTED_COLUMN) expected = fields[at];
        else input[column] = fields[at];
      });
      return { input, expected };
    });
  }

  /** The owner's dataset, else 404. */
  async get(userId: string, id: string): Promise<EvalDatasetRow> {
    const dataset = await this.deps.repos.evals.dataset(userId, id);
    if (!dataset) throw notFound('Dataset');
    return dataset;
  }

  async list(userId: string, query: { limit: number; cursor?: string }) {
    const after = query.cursor ? decodeCursor(query.cursor, timeIdKey) : undefined;
    const rows = await this.deps.repos.evals.listDatasets(userId, { limit: query.limit + 1, after });
    return pageOf(rows, query.limit, (row) => [row.createdAt.toISOString(), row.id]);
  }

  /** One page of the owner's dataset's rows, in order (the cursor is the next position, from 1). */
  async rows(userId: string, id: string, query: { limit: number; cursor?: string }) {
    const dataset = await this.get(userId, id);
    const from = query.cursor ? decodeCursor(query.cursor, positionKey) : 0;
    const rows = await this.deps.repos.evals.datasetRows(dataset.id, { from, limit: query.limit + 1 });
    return pageOf(rows, query.limit, (row: EvalDatasetRowRow) => [row.position + 1]);
  }

  async remove(userId: string, id: string): Promise<void> {
    if (!(await this.deps.repos.evals.removeDataset(userId, id))) throw notFound('Dataset');
  }
}
