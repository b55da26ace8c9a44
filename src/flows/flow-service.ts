import type { z } from 'zod';
import type { ModelCatalog } from '../ai/model-catalog';
import { AppError, notFound } from '../lib/errors';
import { decodeCursor, pageOf, PG_INTEGER_MAX, positiveIntKey, timeIdKey } from '../lib/pagination';
import type { Repositories } from '../models';
import type { FlowRow, FlowVersionRow } from '../models/schema';
import type { HttpCredentials } from './http-credentials';
import {
  inputKeys,
  validateDefinition,
  type AgentflowDefinition,
  type createFlowSchema,
  type FlowNode,
  type updateFlowSchema,
} from './definition';
import { admitPrompt } from '../ai/prompt-admission';
import type { PromptGuardMode } from '../ai/prompt-guard';
import type { Logger } from '../lib/logger';

/**
 * Saved flows: create, read, change, delete, always as their owner (another user's flow
 * is a 404). Definitions are validated against the flow's type, the configured models, the
 * owner's credentials and the people its forms may ask on save and on publish.
 */
/** A `[version]` cursor key, or null. */
const versionKey = positiveIntKey(PG_INTEGER_MAX);

export class FlowService {
  constructor(
    private readonly deps: {
      repos: Repositories;
      models: ModelCatalog;
      credentials?: Pick<HttpCredentials, 'refusals'>;
      /** The prompt guard's mode: a node prompt or system prompt it blocks is refused (422 `prompt_rejected`) on save. */
      promptGuard?: PromptGuardMode;
      logger?: Logger;
    },
  ) {}

  /** The definition's prompts (a chatflow's system prompt, every node's prompt) pass the prompt guard. */
  private checkPrompts(userId: string, definition: Record<string, unknown>): void {
    const { systemPrompt, nodes } = definition as { systemPrompt?: string; nodes?: Array<{ prompt?: string }> };
    const texts = [
      { path: 'definition.systemPrompt', text: systemPrompt },
      ...(nodes ?? []).map((node, index) => ({ path: `definition.nodes.${index}.prompt`, text: node.prompt })),
    ];
    admitPrompt(this.deps.promptGuard ?? 'off', 'flow_node_prompt', texts, this.deps.logger && { logger: this.deps.logger, userId });
  }

  /**
   * A definition's HTTP tools may only name credentials their owner has, for a URL on one of the
   * credential's origins: 400 with the tool's path and the credential otherwise.
   */
  private async checkCredentials(userId: string, definition: Record<string, unknown>): Promise<void> {
    const tools = (definition as { httpTools?: Array<{ url: string; credential?: string }> }).httpTools ?? [];
    const named = tools
      .map((tool, index) => ({ index, credential: tool.credential, url: tool.url }))
      .filter((use): use is { index: number; credential: string; url: string } => use.credential !== undefined);
    if (!named.length || !this.deps.credentials) return;
    const refusals = await this.deps.credentials.refusals(userId, named);
    const problems = named.flatMap((use, at) =>
      refusals[at] ? [{ path: `definition.httpTools.${use.index}.credential`, message: refusals[at] }] : [],
    );
    if (problems.length) throw new AppError(400, 'validation_failed', 'Invalid request body', problems);
  }

  /**
   * Each subflow node runs an agentflow of the same owner (not the flow itself), at a version it
   * has, and gives every input key that flow reads: 400 naming the node otherwise.
   */
  private async checkSubflows(userId: string, definition: Record<string, unknown>, selfId?: string): Promise<void> {
    const nodes = ((definition as { nodes?: FlowNode[] }).nodes ?? []).map((node, index) => ({ node, index }));
    const problems: Array<{ path: string; message: string }> = [];
    for (const { node, index } of nodes) {
      if (node.type !== 'subflow') continue;
      const at = `definition.nodes.${index}`;
      if (node.flowId === selfId) {
        problems.push({ path: `${at}.flowId`, message: `subflow "${node.id}" names this flow: a flow cannot run itself` });
        continue;
      }
      const flow = await this.deps.repos.flows.get(userId, node.flowId);
      if (!flow || flow.type !== 'agentflow') {
        problems.push({ path: `${at}.flowId`, message: `subflow "${node.id}": no agentflow of yours has the id ${node.flowId}` });
        continue;
      }
      const version = node.version === undefined ? null : await this.deps.repos.flows.version(flow.id, node.version);
      if (node.version !== undefined && !version) {
        problems.push({ path: `${at}.version`, message: `subflow "${node.id}": the flow has no version ${node.version}` });
        continue;
      }
      const child = (version?.definition ?? flow.definition) as unknown as AgentflowDefinition;
      const missing = inputKeys(child).filter((key) => !(key in node.input));
      if (missing.length)
        problems.push({
          path: `${at}.input`,
          message: `subflow "${node.id}" misses inputs its flow reads: ${missing.map((key) => `"${key}"`).join(', ')}`,
        });
    }
    if (problems.length)
      throw new AppError(400, 'validation_failed', `Invalid flow definition: ${problems[0].path}: ${problems[0].message}`, problems);
  }

  /**
   * Each human_input node names only people its owner may ask: the owner, or a user (by id or
   * email) who shares a canvas with them. 400 naming the recipient's path otherwise; a user who
   * does not exist gets the same answer, so a save tells no one who has an account.
   */
  private async checkRecipients(userId: string, definition: Record<string, unknown>): Promise<void> {
    const nodes = ((definition as { nodes?: FlowNode[] }).nodes ?? []).map((node, index) => ({ node, index }));
    const problems: Array<{ path: string; message: string }> = [];
    for (const { node, index } of nodes) {
      if (node.type !== 'human_input' || !node.recipients) continue;
      const allowed = await this.deps.repos.inputRequests.allowedRecipients(userId, node.recipients);
      node.recipients.forEach((recipient, at) => {
        if (!allowed.has(recipient))
          problems.push({
            path: `definition.nodes.${index}.recipients.${at}`,
            message: `human_input "${node.id}": "${recipient}" is neither you nor a user who shares a canvas with you`,
          });
      });
    }
    if (problems.length)
      throw new AppError(400, 'validation_failed', `Invalid flow definition: ${problems[0].path}: ${problems[0].message}`, problems);
  }

  private readonly knows = (ref: { provider: string; model: string }) => this.deps.models.knows(ref);

  /** The models a definition may name as `model: {provider, model}`. */
  models(): Array<{ provider: string; model: string }> {
    return this.deps.models.list();
  }

  async create(userId: string, body: z.output<typeof createFlowSchema>): Promise<FlowRow> {
    const definition = validateDefinition(body.type, body.definition, this.knows);
    this.checkPrompts(userId, definition as unknown as Record<string, unknown>);
    await this.checkCredentials(userId, definition as unknown as Record<string, unknown>);
    await this.checkSubflows(userId, definition as unknown as Record<string, unknown>);
    await this.checkRecipients(userId, definition as unknown as Record<string, unknown>);
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
    if (definition) this.checkPrompts(userId, definition);
    if (definition) await this.checkCredentials(userId, definition);
    if (definition) await this.checkSubflows(userId, definition, flow.id);
    if (definition) await this.checkRecipients(userId, definition);
    const updated = await this.deps.repos.flows.update(userId, flowId, { name: body.name, definition, publish: body.publish });
    if (!updated) throw notFound('Flow');
    return updated;
  }

  /**
   * A new definition of the owner's flow checked as `update` checks one before saving it (its
   * type, models, prompts, credentials and subflows), without saving it: a replay's draft.
   */
  async checkDraft(userId: string, flow: FlowRow, value: Record<string, unknown>): Promise<Record<string, unknown>> {
    const definition = validateDefinition(flow.type, value, this.knows) as unknown as Record<string, unknown>;
    this.checkPrompts(userId, definition);
    await this.checkCredentials(userId, definition);
    await this.checkSubflows(userId, definition, flow.id);
    return definition;
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
    await this.checkCredentials(userId, found.definition);
    await this.checkSubflows(userId, found.definition, flow.id);
    await this.checkRecipients(userId, found.definition);
    const published = await this.deps.repos.flows.publish(userId, flowId, version);
    if (!published) throw notFound('Flow version');
    return published;
  }

  async remove(userId: string, flowId: string): Promise<void> {
    if (!(await this.deps.repos.flows.remove(userId, flowId))) throw notFound('Flow');
  }
}
