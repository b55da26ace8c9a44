import type { z } from 'zod';
import type { ModelCatalog } from '../ai/model-catalog';
import { AppError, notFound } from '../lib/errors';
import { decodeCursor, pageOf, timeIdKey } from '../lib/pagination';
import type { Repositories } from '../models';
import type { FlowRow, FlowVersionRow } from '../models/schema';
import type { HttpCredentials } from './http-credentials';
import { validateDefinition, type createFlowSchema, type updateFlowSchema } from './definition';

/**
 * Saved flows: create, read, change, delete, always as their owner (another user's flow
 * is a 404). Definitions are validated against the flow's type and the configured models on save.
 */
/** A `[version]` cursor key, or null. */
const versionKey = (key: unknown[]): number | null =>
  key.length === 1 && Number.isInteger(key[0]) && (key[0] as number) >= 1 ? (key[0] as number) : null;

export class FlowService {
  constructor(private readonly deps: { repos: Repositories; models: ModelCatalog; credentials?: Pick<HttpCredentials, 'missing'> }) {}

  /** A definition's HTTP tools may only name credentials their owner has: 400 with the tool's path otherwise. */
  private async checkCredentials(userId: string, definition: Record<string, unknown>): Promise<void> {
    const tools = ((definition as { httpTools?: Array<{ credential?: string }> }).httpTools ?? []).map((tool, index) => ({
      index,
      name: tool.credential,
    }));
    const named = tools.filter((tool): tool is { index: number; name: string } => tool.name !== undefined);
    if (!named.length || !this.deps.credentials) return;
    const missing = new Set(
      await this.deps.credentials.missing(
        userId,
        named.map((tool) => tool.name),
      ),
    );
    const problems = named
      .filter((tool) => missing.has(tool.name))
      .map((tool) => ({ path: `definition.httpTools.${tool.index}.credential`, message: `you have no credential "${tool.name}"` }));
    if (problems.length) throw new AppError(400, 'validation_failed', 'Invalid request body', problems);
  }

  private readonly knows = (ref: { provider: string; model: string }) => this.deps.models.knows(ref);

  /** The models a definition may name as `model: {provider, model}`. */
  models(): Array<{ provider: string; model: string }> {
    return this.deps.models.list();
  }

  async create(userId: string, body: z.output<typeof createFlowSchema>): Promise<FlowRow> {
    const definition = validateDefinition(body.type, body.definition, this.knows);
    await this.checkCredentials(userId, definition as unknown as Record<string, unknown>);
    return this.deps.repos.flows.create({ userId, type: body.type, name: body.name, definition: definition });
  }

  /** The owner's flow, else 404. */
  async get(userId: string, flowId: string): Promise<FlowRow> {
    const flow = await this.deps.repos.flows.get(userId, flowId);
    if (!flow) throw notFound('Flow');
    return flow;
  }

  /** One page of the owner's flows, newest first. */
  async list(userId: string, query: { limit: number; cursor?: string }): Promise<{ items: FlowRow[]; nextCursor: string | null }> {
    const after = query.cursor ? decodeCursor(query.cursor, timeIdKey) : undefined;
    const rows = await this.deps.repos.flows.listPage(userId, { limit: query.limit + 1, after });
    return pageOf(rows, query.limit, (row) => [row.createdAt.toISOString(), row.id]);
  }

  /** Renames it or replaces its definition (checked against its type, which never changes). */
  async update(userId: string, flowId: string, body: z.output<typeof updateFlowSchema>): Promise<FlowRow> {
    const flow = await this.get(userId, flowId);
    const definition =
      body.definition === undefined
        ? undefined
        : (validateDefinition(flow.type, body.definition, this.knows) as unknown as Record<string, unknown>);
    if (definition) await this.checkCredentials(userId, definition);
    const updated = await this.deps.repos.flows.update(userId, flowId, { name: body.name, definition, publish: body.publish });
    if (!updated) throw notFound('Flow');
    return updated;
  }

  /** One version of the owner's flow, else 404 (another user's flow included). */
  async version(userId: string, flowId: string, version: number): Promise<{ flow: FlowRow; version: FlowVersionRow }> {
    const flow = await this.get(userId, flowId);
    const found = await this.deps.repos.flows.version(flow.id, version);
    if (!found) throw notFound('Flow version');
    return { flow, version: found };
  }

  /** One page of the owner's flow's versions, newest first (the cursor is the last version number shown). */
  async versions(
    userId: string,
    flowId: string,
    query: { limit: number; cursor?: string },
  ): Promise<{ flow: FlowRow; items: Array<Pick<FlowVersionRow, 'version' | 'createdAt'>>; nextCursor: string | null }> {
    const flow = await this.get(userId, flowId);
    const before = query.cursor ? decodeCursor(query.cursor, versionKey) : undefined;
    const rows = await this.deps.repos.flows.listVersions(flow.id, { limit: query.limit + 1, before });
    return { flow, ...pageOf(rows, query.limit, (row) => [row.version]) };
  }

  /**
   * Publishes a saved version: new executions and the owner's chat turns run it from now on
   * (publishing an older one is a rollback). Checked again against the models served today.
   */
  async publish(userId: string, flowId: string, version: number): Promise<FlowRow> {
    const { flow, version: found } = await this.version(userId, flowId, version);
    validateDefinition(flow.type, found.definition, this.knows);
    const published = await this.deps.repos.flows.publish(userId, flowId, version);
    if (!published) throw notFound('Flow version');
    return published;
  }

  async remove(userId: string, flowId: string): Promise<void> {
    if (!(await this.deps.repos.flows.remove(userId, flowId))) throw notFound('Flow');
  }
}
